"""Chapters as text: each notebook's source is a MyST Markdown file (jupytext), paired with the
executed ``.ipynb`` that learners get.

``notebooks/src/NN-name.md`` is what an instructor edits (in JupyterLab, where jupytext keeps the
pair in sync on save, or in any editor); ``./lab build NN`` executes it on the lab's engine and
writes ``notebooks/NN-name.ipynb`` with its outputs. Cell ids are derived from the chapter's
headings, so an inserted cell renumbers only the cells of its own section:

>>> from nbformat.v4 import new_markdown_cell as md, new_code_cell as code, new_notebook
>>> nb = new_notebook(cells=[md("# 第六章"), code("x"), md("## 6.1 获取镜像"), code("a"), code("b"),
...                          md("### ✍️ 练习 2：标签"), code("work")])
>>> assign_ids(nb, "ch06")
['ch06-top', 'ch06-top-1', 'ch06-6-1', 'ch06-6-1-1', 'ch06-6-1-2', 'ch06-ex2', 'ch06-ex2-1']

An id given in the source (cell metadata ``id``; in MyST ``:id: name`` under ``{code-cell}``)
wins over the derived one.

The graded labs are authored the same way: ``labs/src/labN/labN.md`` is paired with nbgrader's
source ``labs/source/labN/labN.ipynb`` (``labs/jupytext.toml``; the .md stays out of the folder
nbgrader copies into the release), each cell's nbgrader metadata is in its MyST options, and a lab
cell's id is its nbgrader ``grade_id``. ``./lab build lab3`` executes a lab like a chapter.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcore import kernelspec
from labcore.state import REPO

__all__ = ["FORMAT", "Chapter", "assign_ids", "build", "chapters", "destination", "drift", "labs", "read_source"]

FORMAT = "md:myst"
NOTEBOOKS = Path(os.environ.get("LAB_NOTEBOOKS") or REPO / "notebooks")  # tests point it at a copy
LABS = REPO / "labs"
KERNEL = {"name": kernelspec.NAME, "display_name": kernelspec.DISPLAY_NAME, "language": "python"}
_NUMBER = re.compile(r"^#+\s*(?:第\S+章\s*)?(\d+(?:\.\d+)*)")
_EXERCISE = re.compile(r"^#+\s*(?:✍️?\s*)?练习\s*(\d+)")  # the ✍ icon is optional
_ASCII = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class Chapter:
    """One notebook of the course (a chapter or a graded lab): its text source and its executed notebook."""

    source: Path  # notebooks/src/06-images.md, labs/src/lab3/lab3.md
    notebook: Path  # notebooks/06-images.ipynb, labs/source/lab3/lab3.ipynb

    @property
    def is_lab(self) -> bool:
        return self.notebook.stem.startswith("lab")

    @property
    def number(self) -> str:
        """``06`` for a chapter, ``lab3`` for a lab (what ``./lab build`` takes)."""
        return self.notebook.stem if self.is_lab else self.notebook.name[:2]

    @property
    def key(self) -> str:
        return self.number if self.is_lab else f"ch{self.number}"


def labs(root: Path = LABS) -> list[Chapter]:
    """Every lab source ``root/src/labN/labN.md`` with its nbgrader source notebook."""
    return [Chapter(md, root / "source" / md.stem / f"{md.stem}.ipynb")
            for md in sorted((root / "src").glob("lab*/lab*.md")) if md.parent.name == md.stem]


def destination(name: str) -> Path:
    """Where the clone keeps the executed notebook ``name`` (``lab3.ipynb`` or ``06-images.ipynb``)."""
    stem = name.removesuffix(".ipynb")
    return LABS / "source" / stem / name if stem.startswith("lab") else NOTEBOOKS / name


def chapters(root: Path = NOTEBOOKS, only: list[str] | None = None, labs_root: Path = LABS) -> list[Chapter]:
    """Every chapter source under ``root/src``, or those named in ``only`` ("06", or "lab3" for a lab)."""
    found = [Chapter(md, root / f"{md.stem}.ipynb") for md in sorted((root / "src").glob("[0-9][0-9]-*.md"))]
    if only:
        wanted = {n if n.startswith("lab") else n.zfill(2) for n in only}
        pool = found + (labs(labs_root) if any(n.startswith("lab") for n in wanted) else [])
        unknown = wanted - {c.number for c in pool}
        if unknown:
            raise ValueError(f"No chapter or lab {', '.join(sorted(unknown))}: the chapters are "
                             f"{', '.join(c.number for c in found)}, the labs "
                             f"{', '.join(c.number for c in labs(labs_root))}.")
        found = [c for c in pool if c.number in wanted]
    return found


# Headings that recur in every chapter, by the id they give their section.
WORDS = {"准备": "setup", "自我检测": "selfcheck", "小结": "summary", "版本命名": "versions", "回顾": "recap"}


def _section(line: str, seen: dict[str, int], last: list[str]) -> str:
    """The section id a heading line gives: ``top`` (the title), its number (``6-1``), ``ex2`` for
    an exercise, a known word, its ASCII words, else ``<last number>-s<n>`` (an unnumbered
    subsection)."""
    title = line.lstrip("#").strip()
    if m := _EXERCISE.match(line):
        sec = f"ex{m.group(1)}"
    elif line.startswith("# "):
        sec = "top"
    elif m := _NUMBER.match(line):
        sec = last[0] = m.group(1).replace(".", "-")
    elif title in WORDS:
        sec = WORDS[title]
    elif words := _ASCII.findall(title):
        sec = "-".join(words[:4]).lower()
    else:
        sec = f"{last[0]}-s"
    seen[sec] = seen.get(sec, 0) + 1
    if sec.endswith("-s"):
        return f"{sec}{seen[sec]}"
    return sec if seen[sec] == 1 else f"{sec}-{seen[sec]}"


def assign_ids(nb: Any, key: str) -> list[str]:
    """Give every cell its id: ``<key>-<section>`` for a heading cell, ``<key>-<section>-<k>`` for
    the k-th cell after it. Returns the ids in order."""
    seen: dict[str, int] = {}
    last = [key]
    sec, k = "top", 0
    ids: list[str] = []
    for cell in nb.cells:
        first = cell.source.lstrip().split("\n", 1)[0] if cell.source.strip() else ""
        if cell.cell_type == "markdown" and first.startswith("#"):
            sec, k = _section(first, seen, last), 0
            cid = f"{key}-{sec}"
        else:
            k += 1
            cid = f"{key}-{sec}-{k}"
        cid = str(cell.metadata.get("id") or cid)[:64]
        cell.id = cid
        ids.append(cid)
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"Two cells have the id {sorted(dupes)[0]!r}: give one of them another ':id:'.")
    return ids


def read_source(ch: Chapter) -> Any:
    """The chapter's cells as written (no outputs), with their ids, as an nbformat notebook."""
    import jupytext

    nb = jupytext.read(ch.source, fmt=FORMAT)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = dict(KERNEL)
    nb.metadata["language_info"] = {"name": "python"}
    if ch.is_lab:  # nbgrader names every cell of a lab: that name is its id
        for cell in nb.cells:
            cell.id = str(cell.metadata.get("nbgrader", {}).get("grade_id") or cell.id)
    else:
        assign_ids(nb, ch.key)
    return nb


_FIELDS = ("id", "type", "text", "tags", "nbgrader", "jupyter")  # what _inputs compares, in order


def _inputs(nb: Any) -> list[tuple[str, str, str, tuple[str, ...], str, str]]:
    return [(c.get("id", ""), c.cell_type, c.source, tuple(c.metadata.get("tags", ())),
             json.dumps(c.metadata.get("nbgrader"), sort_keys=True),
             json.dumps(c.metadata.get("jupyter"), sort_keys=True)) for c in nb.cells]


def drift(ch: Chapter) -> list[str]:
    """Where the executed notebook differs from its source (ids, cell kinds, text, tags, nbgrader's
    metadata, JupyterLab's ``jupyter`` metadata: an input shown collapsed): one line per difference,
    empty when they agree."""
    import nbformat

    if not ch.notebook.exists():
        return [f"{ch.notebook.name} is missing: run ./lab build {ch.number}"]
    want = _inputs(read_source(ch))
    have = _inputs(nbformat.read(ch.notebook, as_version=4))
    out = []
    for i, (w, h) in enumerate(zip(want, have)):
        if w != h:
            what = next(name for name, a, b in zip(_FIELDS, w, h) if a != b)
            out.append(f"{ch.notebook.name} cell {i + 1} ({w[0]}): {what} differs from {ch.source.name}")
    if len(want) != len(have):
        out.append(f"{ch.notebook.name} has {len(have)} cells, {ch.source.name} {len(want)}")
    return out


# -- building: execute the source, store the outputs --------------------------------------------

def _check_kernel() -> None:
    """Say in one line when the course kernel is missing or talks to another engine than this shell."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from labcore.errors import LabFailure

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL["name"])
    except NoSuchKernel:
        raise LabFailure("The course kernel is not installed here: run ./lab up first, then ./lab build.") from None
    want, have = os.environ.get("DOCKER_HOST"), spec.env.get("DOCKER_HOST")
    if want and have != want:
        raise LabFailure(f"The course kernel ({spec.resource_dir}) talks to {have}, this shell to {want}: "
                         "run ./lab up (it reinstalls the kernel), then build again.")


def _execute(nb: Any, cwd: Path) -> float:
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name=KERNEL["name"], timeout=180, record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    t0 = time.monotonic()
    client.execute()
    return time.monotonic() - t0


def _tidy(nb: Any) -> None:
    """Drop what changes from run to run but is no content; one stream output per run of lines."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        merged: list[Any] = []
        for out in cell.get("outputs", []):
            out.get("metadata", {}).pop("execution", None)
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        cell.outputs = merged
    li = nb.metadata.get("language_info", {})
    nb.metadata["language_info"] = {k: li[k] for k in ("name", "mimetype", "file_extension") if k in li}
    _drop_unshown_widgets(nb)


def _drop_unshown_widgets(nb: Any) -> None:
    """Keep the state of the widgets an output shows (and what they contain): nbclient keeps every
    widget the run made, also those closed since (a finished pull's live view)."""
    key = "application/vnd.jupyter.widget-state+json"
    states = nb.metadata.get("widgets", {}).get(key, {}).get("state", {})
    todo = [out.data["application/vnd.jupyter.widget-view+json"]["model_id"]
            for cell in nb.cells for out in cell.get("outputs", [])
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    keep: set[str] = set()
    while todo:
        mid = todo.pop()
        if mid in keep or mid not in states:
            continue
        keep.add(mid)
        todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(states[mid]))
    if states and not keep:
        del nb.metadata["widgets"]
    elif states:
        nb.metadata["widgets"][key]["state"] = {k: v for k, v in states.items() if k in keep}


def host_specific() -> dict[str, str]:
    """Text that names this machine, and what the stored outputs say instead: the host kernel's
    release, the lab's home and run directories. A learner who runs the cell sees their own."""
    out = {os.uname().release: "（宿主的内核版本，每台机器不同）"}
    if os.environ.get("LAB_HOME"):
        out[os.environ["LAB_HOME"]] = "$LAB_HOME"
    m = re.match(r"unix://(/.*?/dockerlab-[^/]+)/", os.environ.get("DOCKER_HOST", ""))
    if m:
        out[m.group(1)] = "<run>"
    return out


def _scrub(nb: Any, replace: dict[str, str]) -> None:
    def fix(text: str) -> str:
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out.text = fix(out.text)
            for key, value in out.get("data", {}).items():
                if isinstance(value, str) and not key.startswith("image/png"):
                    out.data[key] = fix(value)


def build(chs: list[Chapter], execute: bool = True, out: Path | None = None,
          say: Any = print) -> list[Path]:
    """Write each chapter's notebook from its source, executed on the lab's engine unless
    ``execute`` is False. ``out``: another directory for the notebooks (default: beside ``src``)."""
    import nbformat

    if execute:
        _check_kernel()
    written = []
    for ch in chs:
        nb = read_source(ch)
        took = _execute(nb, ch.notebook.parent) if execute else 0.0
        _tidy(nb)
        _scrub(nb, host_specific())
        nbformat.validate(nb)
        target = (out or ch.notebook.parent) / ch.notebook.name
        target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        if out is None:  # the source stays at least as new as its notebook (jupytext opens the pair then)
            os.utime(ch.source)
        written.append(target)
        say(f"{target.name}: {len(nb.cells)} cells" + (f", ran in {took:.1f} s" if execute else " (not run)"))
    return written
