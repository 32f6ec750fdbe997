"""Chapters and labs authored as MyST Markdown (jupytext) and executed into the notebooks learners
(and nbgrader) get."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from labctl import authoring
from labcore.state import REPO


@pytest.mark.parametrize("ch", authoring.chapters(REPO / "notebooks") + authoring.labs(REPO / "labs"),
                         ids=lambda c: c.number)
def test_every_notebook_is_its_source_executed(ch: authoring.Chapter) -> None:
    problems = authoring.drift(ch)
    assert not problems, "\n".join(problems) + f"\nrun ./lab build {ch.number} (see AUTHORING.md)"


def test_every_chapter_has_a_source_and_every_source_a_notebook() -> None:
    notebooks = {p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")}
    sources = {c.source.stem for c in authoring.chapters(REPO / "notebooks")}
    assert notebooks == sources and len(sources) == 8


def test_drift_is_found(tmp_path: Path) -> None:
    """The drift check can fail: a sentence changed in the source alone, then a cell added."""
    shutil.copytree(REPO / "notebooks", tmp_path / "nb")
    ch = authoring.chapters(tmp_path / "nb", ["05"])[0]
    text = ch.source.read_text(encoding="utf-8")
    ch.source.write_text(text.replace("## 5.5 ", "## 5.5 （改）", 1), encoding="utf-8")
    assert any("ch05-5-5" in d and "text differs" in d for d in authoring.drift(ch))
    ch.source.write_text(text + "\n```{code-cell}\n1 + 1\n```\n", encoding="utf-8")
    assert any("cells" in d for d in authoring.drift(ch))


def test_labs_are_sources_outside_what_nbgrader_releases(tmp_path: Path) -> None:
    """Each lab's .md sits outside labs/source/labN/ (nbgrader copies that folder whole), its cells
    keep nbgrader's metadata and take their grade_id as id, and a changed grade is drift."""
    found = authoring.labs(REPO / "labs")
    assert [c.number for c in found] == ["lab1", "lab2", "lab3", "lab4", "lab5"]
    assert not list((REPO / "labs" / "source").rglob("*.md"))
    nb = authoring.read_source(found[2])
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.id for c in graded] == ["task1-edit", "task2-commit", "task3-serve"]
    assert sum(c.metadata["nbgrader"]["points"] for c in graded) == 10
    shutil.copytree(REPO / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("grading", "locale"))
    lab = authoring.labs(tmp_path / "labs")[2]
    text = lab.source.read_text(encoding="utf-8")
    lab.source.write_text(text.replace("points: 4", "points: 5", 1), encoding="utf-8")
    assert any("task3-serve" in d and "nbgrader differs" in d for d in authoring.drift(lab))


def test_saving_a_lab_in_jupyterlab_keeps_its_source(tmp_path: Path) -> None:
    """What jupytext does on save (labs/jupytext.toml): the .md comes out as it is, nbgrader's
    metadata and all, so an instructor's save changes only what they edited."""
    from jupytext.cli import jupytext as jupytext_cli

    shutil.copytree(REPO / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("grading", "locale"))
    found = authoring.labs(tmp_path / "labs")
    before = [lab.source.read_text(encoding="utf-8") for lab in found]
    for lab in found:
        os.utime(lab.notebook)  # the notebook was saved last
    jupytext_cli(["--sync", "--quiet", *(str(lab.notebook) for lab in found)])
    assert [lab.source.read_text(encoding="utf-8") for lab in found] == before


def test_an_inserted_cell_renumbers_only_its_own_section() -> None:
    ch = authoring.chapters(REPO / "notebooks", ["06"])[0]
    nb = authoring.read_source(ch)
    before = [c.id for c in nb.cells]
    at = before.index("ch06-6-3") + 2
    nb.cells.insert(at, nbformat.v4.new_code_cell("%docker image ls"))
    after = authoring.assign_ids(nb, ch.key)
    changed = {a for a, b in zip(before, after[:at] + after[at + 1:]) if a != b}
    assert changed and all(c.startswith("ch06-6-3-") for c in changed), changed
    assert after[at] == f"ch06-6-3-{at - before.index('ch06-6-3')}"


def test_exercises_follow_the_convention() -> None:
    """Every "✍️ 练习" heading is followed by the learner's cell (tag exercise) and its check (tag check)."""
    count = 0
    for ch in authoring.chapters(REPO / "notebooks"):
        cells = authoring.read_source(ch).cells
        for i, c in enumerate(cells):
            if c.id.split("-")[-1].startswith("ex") and c.cell_type == "markdown":
                count += 1
                work, check = cells[i + 1], cells[i + 2]
                assert "exercise" in work.metadata.get("tags", []), work.id
                assert "check" in check.metadata.get("tags", []) and "check" in check.source.lower(), check.id
    assert count == 25  # chapter 5 has four since its engine-of-your-own exercise


def test_two_cells_with_one_id_are_refused() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"),
                                         nbformat.v4.new_code_cell("1", metadata={"id": "ch99-top"})])
    with pytest.raises(ValueError, match="ch99-top"):
        authoring.assign_ids(nb, "ch99")


def _jupyterlab(root: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A real JupyterLab (the venv's, with jupytext) on ``root``; its token in a config file."""
    token = secrets.token_hex(16)
    cfg = tmp / "jcfg"
    cfg.mkdir()
    (cfg / "jupyter_server_config.json").write_text(json.dumps({"IdentityProvider": {"token": token}}))
    from labcore import proc

    port = proc.free_port(8950)
    exe = Path(sys.executable).parent / "jupyter-lab"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(cfg), "JUPYTER_RUNTIME_DIR": str(tmp / "jrt")}
    server = subprocess.Popen([str(exe), "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
                               f"--ServerApp.root_dir={root}"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "jupyter.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded 2-core machine: JupyterLab can take a while
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/status",
                                   headers={"Authorization": f"token {token}"}), timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail((tmp / "jupyter.log").read_text()[-2000:])
    return server, base, token


def _api(base: str, token: str, path: str, body: dict | None = None) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(f"{base}/api/contents/{path}", method="PUT" if body else "GET",
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)  # type: ignore[no-any-return]


@pytest.mark.engine
def test_an_instructor_edits_chapter_6_in_jupyterlab_rebuilds_and_the_tests_pass(state, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", work)
    server, base, token = _jupyterlab(work, tmp_path)
    try:
        # What JupyterLab does when the instructor opens chapter 6, edits and presses Ctrl+S.
        model = _api(base, token, "06-images.ipynb?content=1")
        cells = model["content"]["cells"]
        i = next(n for n, c in enumerate(cells) if c["id"] == "ch06-6-1")
        cells[i]["source"] = cells[i]["source"].replace("从仓库获取镜像的命令是", "从仓库获取（下载）镜像的命令是")
        cells.insert(i + 1, nbformat.v4.new_code_cell('print("六乘七 =", 6 * 7)'))
        cells[i + 1].pop("id")  # a cell JupyterLab just made has an id of its own; the build gives the course's
        _api(base, token, "06-images.ipynb", {"type": "notebook", "format": "json", "content": model["content"]})
    finally:
        server.terminate()
        server.wait(timeout=20)
    md = (work / "src" / "06-images.md").read_text(encoding="utf-8")
    assert ("从仓库获取（下载）镜像的命令是" in md
            and 'print("六乘七 =", 6 * 7)' in md), "saving did not update the source"
    ch = authoring.chapters(work, ["06"])[0]
    assert authoring.drift(ch), "the new cell has no course id yet: drift must say so until the build"

    # One command re-executes the chapter from its source.
    env = {**os.environ, "LAB_NOTEBOOKS": str(work)}
    r = subprocess.run([sys.executable, "-m", "labctl", "build", "06"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert authoring.drift(ch) == []
    nb = nbformat.read(work / "06-images.ipynb", as_version=4)
    new = next(c for c in nb.cells if c.id == "ch06-6-1-1")
    assert (new.source.startswith('print("六乘七 ="')
            and "六乘七 = 42" in "".join(o.get("text", "") for o in new.outputs))
    assert [c.id for c in nb.cells if c.id.startswith("ch06-6-2")][0] == "ch06-6-2"  # later sections keep theirs

    # And the chapter's tests pass on the rebuilt notebook.
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval", str(work / "06-images.ipynb"), "-q",
                        "--nbval-sanitize-with", str(REPO / "tests" / "sanitize.cfg"), "-p", "no:cacheprovider"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
