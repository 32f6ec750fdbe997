"""Cells whose code is the course's machinery, not the lesson, show their output with the input
collapsed: JupyterLab's own cell metadata ``jupyter: {source_hidden: true}`` (the learner clicks the
「…」 to see the code). The MyST source carries it as the code-cell's YAML block, the executed notebook
as cell metadata, and the two agree; what the learner types or is taught is never collapsed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from labctl import authoring
from labcore.state import REPO

COURSE = authoring.chapters(REPO / "notebooks") + authoring.labs(REPO / "labs")
# Tags of cells the learner fills in or runs to be checked.
LEARNER_TAGS = {"exercise", "check", "recap"}
# Lines that are the lesson itself: the commands the chapters teach, and the learner's checks.
TAUGHT = re.compile(r"^\s*(%docker|%%writefile|%layers|%diff)\b|checks\.ex\(|lab\.pull\(", re.M)


def hidden(nb: Any) -> list[str]:
    return [c.id for c in nb.cells if c.metadata.get("jupyter", {}).get("source_hidden")]


@pytest.mark.parametrize("ch", COURSE, ids=lambda c: c.number)
def test_a_cell_collapsed_in_the_notebook_is_collapsed_in_its_source_and_back(ch: authoring.Chapter) -> None:
    assert hidden(authoring.read_source(ch)) == hidden(nbformat.read(ch.notebook, as_version=4)), (
        f"{ch.notebook.name} and {ch.source.name} collapse different cells: run ./lab build {ch.number}")


@pytest.mark.parametrize("ch", COURSE, ids=lambda c: c.number)
def test_only_the_course_machinery_is_collapsed(ch: authoring.Chapter) -> None:
    for cell in authoring.read_source(ch).cells:
        meta = cell.metadata.get("jupyter", {})
        assert not meta.get("outputs_hidden"), f"{cell.id}: a learner sees every output"
        if not meta.get("source_hidden"):
            continue
        assert cell.cell_type == "code", f"{cell.id}: collapse code, not the prose"
        tags = LEARNER_TAGS & set(cell.metadata.get("tags", ()))
        assert not tags, f"{cell.id} is the learner's ({', '.join(tags)}): keep its input visible"
        assert "nbgrader" not in cell.metadata, f"{cell.id}: a lab's graded and given cells stay visible"
        taught = TAUGHT.search(cell.source)
        assert not taught, f"{cell.id} runs {taught.group(0).strip()!r}, which the chapter teaches: keep it visible"


def test_chapters_collapse_their_machinery() -> None:
    """The rules above are not vacuous: the chapters that have helper code collapse some of it."""
    per = {ch.number: hidden(authoring.read_source(ch)) for ch in authoring.chapters(REPO / "notebooks")}
    assert all(per[n] for n in ("01", "02", "03", "04", "05", "06", "07")), per
    assert "ch06-6-2-4" in per["06"]  # compressed_size, the example


def test_collapsing_in_one_file_only_is_drift(tmp_path: Path) -> None:
    shutil.copytree(REPO / "notebooks", tmp_path / "nb")
    ch = authoring.chapters(tmp_path / "nb", ["06"])[0]
    nb = nbformat.read(ch.notebook, as_version=4)
    cell = next(c for c in nb.cells if c.id == "ch06-6-2-4")
    del cell.metadata["jupyter"]
    nbformat.write(nb, ch.notebook)
    assert any("ch06-6-2-4" in d and "jupyter differs" in d for d in authoring.drift(ch))
    with pytest.raises(AssertionError, match="collapse different cells"):
        test_a_cell_collapsed_in_the_notebook_is_collapsed_in_its_source_and_back(ch)


def test_collapsing_a_check_is_refused(tmp_path: Path) -> None:
    shutil.copytree(REPO / "notebooks", tmp_path / "nb")
    ch = authoring.chapters(tmp_path / "nb", ["06"])[0]
    text = ch.source.read_text(encoding="utf-8")
    check = '```{code-cell}\n:tags: [check]\n\nchecks.ex(1)'
    assert text.count(check) == 1
    ch.source.write_text(text.replace(check, '```{code-cell}\n---\njupyter:\n  source_hidden: true\ntags: [check]\n'
                                             '---\nchecks.ex(1)'), encoding="utf-8")
    with pytest.raises(AssertionError, match="learner's"):
        test_only_the_course_machinery_is_collapsed(ch)
