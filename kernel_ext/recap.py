"""A chapter's recap questions (## 回顾): the learner answers in the notebook and the kernel says which
answers are right. Checked, not graded: nothing is recorded outside the kernel.

The questions and their explanations are the chapter's text (notebooks/src/NN-*.md: a numbered list
of multiple-choice questions, then a ``<details>`` 答案与解释); :data:`KEYS` holds only the letters and
the section to read again, so a wrong answer never prints the right one. After a second wrong answer to
the same question the verdict points at the explanation below.

>>> r = Recap("01")
>>> r.check({1: "", 2: "", 3: ""}).text().startswith("✘")
True
"""

from __future__ import annotations

from typing import Any

from .check import CheckResult
from .messages import t

__all__ = ["KEYS", "Recap", "recap"]

# chapter -> one (answer, section to read again) per question, in the order of the chapter's list.
KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "01": (("B", "1.2"), ("C", "1.3"), ("A", "1.4")),
    "02": (("C", "2.1"), ("A", "2.2"), ("B", "2.3")),
    "03": (("B", "3.3"), ("C", "3.5"), ("A", "3.6"), ("B", "3.8")),
    "04": (("C", "4.1.6"), ("A", "4.1.7"), ("B", "4.4")),
    "05": (("B", "5.1 / 5.2"), ("A", "5.1 / 5.2"), ("C", "「加速器对哪些镜像起作用」")),
    "06": (("A", "6.1"), ("C", "6.2"), ("B", "6.3"), ("A", "6.4")),
    "07": (("B", "7.2"), ("A", "7.4"), ("C", "7.3"), ("D", "7.5"), ("C", "7.3「CMD 与 ENTRYPOINT」")),
}


class Recap:
    """The recap questions of chapter ``chapter`` ("03")."""

    def __init__(self, chapter: str) -> None:
        if chapter not in KEYS:
            raise ValueError(f"no recap questions for chapter {chapter!r}")
        self.chapter, self.keys = chapter, KEYS[chapter]
        self.wrong: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"<Recap ch{self.chapter}: {len(self.keys)} questions>"

    def check(self, answers: dict[int, Any]) -> CheckResult:
        """One line per question: right, wrong (where to read again; the explanation after the second
        wrong answer), or not answered yet. ✔ only when every answer is right."""
        parts, ok = [], True
        for n, (key, see) in enumerate(self.keys, start=1):
            given = str(answers.get(n, "") or "").strip().upper()[:1]
            if not given:
                parts.append(t("recap.blank", n=n))
                ok = False
            elif given == key:
                parts.append(t("recap.right", n=n))
            else:
                self.wrong[n] = self.wrong.get(n, 0) + 1
                parts.append(t("recap.wrong" if self.wrong[n] < 2 else "recap.wrong_again", n=n, got=given,
                               see=see))
                ok = False
        return CheckResult(ok, "；".join(parts), key="recap")


def recap(chapter: str) -> Recap:
    """Chapter ``chapter``'s recap questions: ``recap("03").check({1: "B", 2: "", ...})``."""
    return Recap(chapter)
