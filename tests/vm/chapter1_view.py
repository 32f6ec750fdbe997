"""Chapter 1's 1.3 as a learner on cgroup v2 sees it: the chapter's own rendering cell, executed on the facts
the cgroup v2 VM reported (tests/vm: ``info_cgroup_version``, ``info_cgroup_driver`` from ``docker info`` and
``ch01_read``, what the chapter's ``docker run -m 64m`` line read there), exported to HTML as JupyterLab
shows a notebook (nbconvert's lab template) and photographed by headless Chromium.

``python tests/vm/chapter1_view.py [last-run.json] [out.png]`` (root, after ``pytest tests/vm``: the run's
results are in root's ``~/.cache/dockerlab/vm-cgroup2/last-run.json``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "notebooks" / "01-what-is-docker.ipynb"
RENDER_CELL = "ch01-1-3-4"  # from kernel_ext.hostfacts import memory_limit; print(memory_limit(...))
DEFAULT_RUN = Path.home() / ".cache" / "dockerlab" / "vm-cgroup2" / "last-run.json"
DEFAULT_OUT = REPO / "docs" / "screenshots" / "ch01-cgroup-v2.png"


def notebook(results: dict[str, str]) -> nbformat.NotebookNode:
    """The chapter's 1.3 heading, the VM's facts as the chapter's variables, and the rendering cell."""
    cells = {c.get("id"): c for c in nbformat.read(CHAPTER, as_version=4).cells}
    heading = cells["ch01-1-3"]
    render = cells[RENDER_CELL]
    assert "memory_limit(" in render.source, f"{RENDER_CELL} is no longer chapter 1's rendering cell"
    facts = nbformat.v4.new_code_cell(
        "# cgroup v2 虚拟机（tests/vm，Debian 12 + systemd，无 root 引擎）报告的事实：\n"
        "# docker info 的 CgroupVersion / CgroupDriver，和本章 `docker run -m 64m …` 那一行在那里读到的值\n"
        "from IPython.utils.text import SList\n"
        f"info = {{'CgroupVersion': {results['info_cgroup_version']!r}, "
        f"'CgroupDriver': {results['info_cgroup_driver']!r}}}\n"
        f"read = SList({results['ch01_read'].split()!r})")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(heading.source), facts,
                                         nbformat.v4.new_code_cell(render.source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main(run_json: Path = DEFAULT_RUN, out: Path = DEFAULT_OUT) -> Path:
    results = json.loads(run_json.read_text())["results"]
    if "ch01_read" not in results:  # a run of a guest_check.py older than chapter 1's line
        sys.exit(f"{run_json} has no ch01_read: run `pytest tests/vm` from this tree first")
    nb = notebook(results)
    os.environ["DOCKERLAB_LANG"] = "zh"  # the course's language, whatever the shell's
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    said = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    print(said.strip())
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "ch01-v2.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1100,400", f"--screenshot={out}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(out)
    return out


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:3]))
