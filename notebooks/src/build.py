"""Build the course notebooks: write them from the chapter sources with nbformat, execute them with
nbclient on the `dockerlab` kernel (so outputs are stored), and save. Deterministic: fixed cell ids,
no timing metadata, sorted JSON keys.

    .venv/bin/python notebooks/src/build.py            # all notebooks
    .venv/bin/python notebooks/src/build.py 06 00      # only these
    .venv/bin/python notebooks/src/build.py --no-exec  # write without running
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent
sys.path.insert(0, str(HERE))

from cells import Chapter  # noqa: E402

CHAPTERS = ["ch00", "ch01", "ch02", "ch03", "ch04", "ch05", "ch06"]
KERNEL = {"name": "dockerlab", "display_name": "Docker Lab (Python 3)", "language": "python"}


def to_notebook(ch: Chapter) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNEL),
                   "language_info": {"name": "python"}}
    for i, c in enumerate(ch.cells):
        cid = f"{ch.key}-{i:03d}"
        if c.kind == "md":
            cell = nbformat.v4.new_markdown_cell(c.source, id=cid)
        else:
            cell = nbformat.v4.new_code_cell(c.source, id=cid)
            if c.tags:
                cell.metadata["tags"] = list(c.tags)
        nb.cells.append(cell)
    return nb


def check_kernel() -> None:
    """The kernel spec lives in the shared venv; a test run with another LAB_HOME can leave it
    pointing at an engine that is gone. Say so in one line instead of failing in cell 1."""
    import os

    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL["name"])
    want = os.environ.get("DOCKER_HOST")
    have = spec.env.get("DOCKER_HOST")
    if want and have != want:
        sys.exit(f"kernel {KERNEL['name']!r} ({spec.resource_dir}) talks to {have}, this shell to {want}: "
                 "run ./lab up (it reinstalls the kernel), then build again.")


def execute(nb: nbformat.NotebookNode) -> float:
    client = NotebookClient(nb, kernel_name=KERNEL["name"], timeout=180, record_timing=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    t0 = time.monotonic()
    client.execute()
    return time.monotonic() - t0


def tidy(nb: nbformat.NotebookNode) -> None:
    """Drop what changes from run to run but is no content: execution metadata, kernel version."""
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            merged: list = []
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
                # one stream output per run of lines (the kernel batches them by timing)
                if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                        and merged[-1].name == out.name):
                    merged[-1].text += out.text
                else:
                    merged.append(out)
            cell.outputs = merged
    li = nb.metadata.get("language_info", {})
    nb.metadata["language_info"] = {k: li[k] for k in ("name", "mimetype", "file_extension") if k in li}


def host_specific() -> dict[str, str]:
    """Text that names this machine, and what the stored outputs say instead: the host kernel's
    release (ch02's comparison prints it), the lab's home and run directories. A learner who runs
    the cell sees their own values."""
    import os
    import re

    out = {os.uname().release: "<宿主内核>"}
    if os.environ.get("LAB_HOME"):
        out[os.environ["LAB_HOME"]] = "$LAB_HOME"
    host = os.environ.get("DOCKER_HOST", "")
    m = re.match(r"unix://(/.*?/dockerlab-[^/]+)/", host)
    if m:
        out[m.group(1)] = "<run>"
    return out


def scrub(nb: nbformat.NotebookNode, replace: dict[str, str]) -> None:
    """Stored outputs hold no host-specific text (streams, text/plain, text/html)."""
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="chapter numbers to build, e.g. 06 00")
    ap.add_argument("--no-exec", action="store_true", help="write the notebooks without running them")
    args = ap.parse_args(argv)
    if not args.no_exec:
        check_kernel()
    keys = [k for k in CHAPTERS if not args.only or k[2:] in args.only]
    for key in keys:
        ch: Chapter = importlib.import_module(key).chapter()
        nb = to_notebook(ch)
        took = 0.0
        if not args.no_exec:
            took = execute(nb)
        tidy(nb)
        scrub(nb, host_specific())
        path = NOTEBOOKS / ch.filename
        nbformat.validate(nb)
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"{ch.filename}: {len(nb.cells)} cells" + (f", ran in {took:.1f} s" if took else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
