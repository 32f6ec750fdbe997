"""Every exercise of chapters 1-7 on the real engine: as the learner gets it, each check fails and says
what to do next; with the reference answer (the ✓ 参考答案 block under it), each check passes.

Only the chapter's setup and its exercises run (not the whole chapter). A reference answer in a
```python block runs in the chapter's kernel, one in a ```bash block is typed into a terminal (a
pty, as in JupyterLab's terminal) line by line. The engine is left as the test found it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any

import pytest

from labctl import authoring
from labcore.state import REPO
from tests.support.engine_objects import engine_objects, restore

CHAPTERS = ["01", "02", "03", "04", "05", "06", "07"]
SOLUTION = re.compile(r"```(python|bash)\n(.*?)```", re.S)
PROMPT = r"[$#] $"


@dataclass
class Exercise:
    heading: str
    work: Any
    check: Any
    language: str
    solution: str


def exercises(number: str) -> tuple[list[Any], list[Exercise]]:
    """The chapter's setup cells and its exercises, each with its reference answer."""
    ch = authoring.chapters(REPO / "notebooks", [number])[0]
    cells = authoring.read_source(ch).cells
    setup = [c for c in cells if c.cell_type == "code" and c.id.startswith(f"ch{number}-setup")]
    found = []
    for i, c in enumerate(cells):
        if c.cell_type == "markdown" and re.fullmatch(rf"ch{number}-ex\d+", c.id):
            key = next(m for m in cells[i + 3:] if m.cell_type == "markdown" and "参考答案" in m.source)
            lang, code = SOLUTION.search(key.source).groups()  # type: ignore[union-attr]
            found.append(Exercise(c.source.splitlines()[0], cells[i + 1], cells[i + 2], lang, code))
    return setup, found


def verdict(cell: Any) -> str:
    for out in cell.outputs:
        if out.output_type == "error":
            return f"error: {out.ename}: {out.evalue}"
        text = out.get("text") or out.get("data", {}).get("text/plain", "")
        if text.startswith(("✔", "✘")):
            return str(text)
    return "no verdict: " + repr([o.get("text") or o.get("data") for o in cell.outputs])[:300]


def terminal(script: str, env: dict[str, str]) -> None:
    """Type ``script`` into a bash on a pty, one line after each prompt (what the learner does)."""
    import pexpect

    sh = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env={**env, "PS1": "$ ", "TERM": "dumb"},
                       encoding="utf-8", timeout=120)
    try:
        sh.expect(PROMPT)
        for line in script.strip().splitlines():
            sh.sendline(line)
            sh.expect(PROMPT)
        sh.sendline("exit")
        sh.expect(pexpect.EOF)
    finally:
        sh.close(force=True)


@pytest.mark.engine
@pytest.mark.parametrize("number", CHAPTERS)
def test_every_check_fails_as_given_and_passes_with_the_reference_answer(state, client, number: str) -> None:  # type: ignore[no-untyped-def]
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from nbformat.v4 import new_notebook

    setup, exs = exercises(number)
    assert len(exs) >= 3, f"chapter {number} has {len(exs)} exercises"
    env = {**os.environ, **KernelSpecManager().get_kernel_spec(authoring.KERNEL["name"]).env}
    before = engine_objects(client)
    nb = new_notebook()
    # The cells themselves (new_notebook would copy them): a pull's live view updates its own output
    # in place (update_display_data), which nbclient finds by the cell's index in nb.cells.
    nb.cells = [*setup, *(c for e in exs for c in (e.work, e.check))]
    at = {id(c): i for i, c in enumerate(nb.cells)}
    nb.metadata["kernelspec"] = {"name": authoring.KERNEL["name"], "display_name": "Docker Lab (Python 3)",
                                 "language": "python"}
    work = tempfile.mkdtemp(prefix="dockerlab-ex-")
    kc = NotebookClient(nb, kernel_name=authoring.KERNEL["name"], timeout=240,
                        resources={"metadata": {"path": work}})
    failed, passed = [], []
    try:
        with kc.setup_kernel():
            for cell in setup:
                kc.execute_cell(cell, at[id(cell)])
                assert not [o for o in cell.outputs if o.output_type == "error"], (cell.id, cell.outputs)
            for e in exs:  # as the learner gets them (a terminal exercise's cell is Markdown: 在终端里做)
                if e.work.cell_type == "code":
                    kc.execute_cell(e.work, at[id(e.work)])
                kc.execute_cell(e.check, at[id(e.check)])
                failed.append((e.heading, verdict(e.check)))
            for e in exs:  # with the reference answers, in order
                if e.language == "bash":
                    terminal(e.solution, env)
                else:
                    e.work.source = e.solution
                    kc.execute_cell(e.work, at[id(e.work)])
                    assert not [o for o in e.work.outputs if o.output_type == "error"], (e.heading, e.work.outputs)
                kc.execute_cell(e.check, at[id(e.check)])
                passed.append((e.heading, verdict(e.check)))
    finally:
        restore(client, before)
    wrong = [f"{h}: {v}" for h, v in failed if not (v.startswith("✘") and "→" in v)]
    assert not wrong, "checks that do not fail with a hint as the learner gets them:\n" + "\n".join(wrong)
    wrong = [f"{h}: {v}" for h, v in passed if not v.startswith("✔")]
    assert not wrong, "checks that the reference answers do not pass:\n" + "\n".join(wrong)
