"""Small helpers the chapter sources use to describe cells (pure data; build.py turns it into ipynb)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    kind: str  # "md" or "code"
    source: str
    tags: tuple[str, ...] = ()


@dataclass
class Chapter:
    key: str  # "ch06": prefix of the cell ids
    filename: str
    cells: list[Cell] = field(default_factory=list)

    def md(self, text: str) -> None:
        self.cells.append(Cell("md", textwrap.dedent(text).strip("\n")))

    def code(self, text: str, *tags: str) -> None:
        self.cells.append(Cell("code", textwrap.dedent(text).strip("\n"), tuple(tags)))

    def now(self, text: str) -> None:
        """A "现在的情况" box: what changed since the book was written (2018)."""
        body = textwrap.dedent(text).strip("\n")
        quoted = "\n".join("> " + line if line else ">" for line in body.splitlines())
        self.cells.append(Cell("md", "> **🕒 现在的情况**\n>\n" + quoted))

    def exercise(self, n: int, title: str, task: str, hint: str, solution: str,
                 work: str, check: str) -> None:
        """Task (markdown), the learner's cell, the check cell, then hint and hidden solution."""
        self.md(f"### ✍️ 练习 {n}：{title}\n\n{textwrap.dedent(task).strip()}")
        self.code(work)
        self.code(check)
        sol = textwrap.dedent(solution).strip("\n")
        self.md(f"<details><summary>💡 提示</summary>\n\n{textwrap.dedent(hint).strip()}\n\n</details>\n\n"
                f"<details><summary>🔑 参考答案（先自己试一试）</summary>\n\n```python\n{sol}\n```\n\n</details>")


def reset_line(containers: str = "", images: str = "", volumes: str = "", ancestors: str = "",
               extra: str = "") -> str:
    """A silent cell that removes, by the names a chapter uses, what the course made there
    (``kernel_ext.reset``: session-labelled containers and volumes, session-labelled or course
    images); a learner's own objects of the same names stay. ``images`` may hold ``{lab...}``."""
    args = [f"{k}={v!r}.split()" for k, v in (("containers", containers), ("volumes", volumes),
                                               ("ancestors", ancestors)) if v]
    if images:
        args.insert(1 if containers else 0, f"images=f{images!r}.split()" if "{" in images
                    else f"images={images!r}.split()")
    lines = ["from kernel_ext.reset import reset", f"_ = reset(lab, {', '.join(args)})"]
    if extra:
        lines.append(extra)
    return "\n".join(lines)


SETUP = """%load_ext kernel_ext
from kernel_ext import connect, check, registry
lab = connect()"""
