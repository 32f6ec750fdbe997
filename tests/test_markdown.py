"""Markdown that renders as written: every Markdown cell of the chapters and labs, rendered by a
CommonMark renderer (markdown-it-py; JupyterLab's marked applies the same left/right-flanking rule to
** and __), leaves no literal ``**`` or ``__`` in the text a learner reads.

The usual failure in Chinese text: a closing ``**`` after a full-width punctuation mark and before a
Chinese character (「**企业版（EE）**在」) is not right-flanking, so the asterisks show. Write the
bold so it ends before the punctuation, or put a space after the closing ``**``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*(REPO / "notebooks").glob("*.ipynb"), *(REPO / "labs" / "source").glob("lab*/lab*.ipynb")])
MD = MarkdownIt("commonmark").enable("table")


def visible_text(source: str) -> str:
    """The text a reader sees: inline text of the rendered page, code spans and blocks left out."""
    out = []
    for token in MD.parse(source):
        for child in token.children or []:
            if child.type == "text":
                out.append(child.content)
    return "\n".join(out)


def test_the_renderer_shows_what_jupyterlab_shows() -> None:
    assert "**" in visible_text("**企业版（EE）**在 2019 年")  # the bug the issue found
    assert "**" not in visible_text("**企业版（EE）** 在 2019 年")
    assert "**" not in visible_text("**企业版**（EE）在 2019 年")
    assert "**" not in visible_text("用 `a**b` 或\n\n```\n**x\n```")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_literal_bold_or_underscore_markers_are_left(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    left = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        text = visible_text("".join(cell["source"]))
        for line in text.splitlines():
            if re.search(r"\*\*|(?<![\w/])__|__(?![\w/])", line):
                left.append(f"{cell.get('id')}: {line.strip()[:80]}")
    assert not left, "Markdown that shows its ** or __:\n" + "\n".join(left)
