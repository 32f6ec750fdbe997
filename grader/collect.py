"""Read a folder of submissions (``<dir>/<student>/<lab>/<lab>.ipynb``, nbgrader's ``submitted``
layout) into what can be graded, and one clear line for everything that cannot."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.course import LABS
from labs.grading.messages import t

__all__ = ["Problem", "Submission", "collect"]

_STUDENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


@dataclass(frozen=True)
class Submission:
    student: str
    lab: str
    notebook: Path


@dataclass(frozen=True)
class Problem:
    where: str  # "<student>/<folder>" as found
    message: str
    student: str | None = None  # known learner: appears in the gradebook with 0
    lab: str | None = None


def _guess(name: str) -> str:
    digits = re.sub(r"\D", "", name)
    if f"lab{digits}" in LABS:
        return f"lab{digits}"
    close = difflib.get_close_matches(name.lower(), LABS, n=1)
    return close[0] if close else ""


def collect(root: Path) -> tuple[list[Submission], list[Problem]]:
    subs: list[Submission] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return [], [Problem(str(root), t("grade.no_dir", path=root))]
    for sdir in sorted(root.iterdir()):
        if sdir.name.startswith("."):
            continue
        if not sdir.is_dir():
            problems.append(Problem(sdir.name, t("grade.loose_file", name=sdir.name)))
            continue
        if not _STUDENT.match(sdir.name):
            problems.append(Problem(sdir.name, t("grade.bad_student", name=sdir.name)))
            continue
        student = sdir.name
        for adir in sorted(sdir.iterdir()):
            where = f"{student}/{adir.name}"
            if adir.name.startswith("."):
                continue
            if not adir.is_dir():
                problems.append(Problem(where, t("grade.loose_file", name=where), student))
                continue
            if adir.name not in LABS:
                guess = _guess(adir.name)
                hint = t("grade.did_you_mean", lab=guess) if guess else ""
                problems.append(Problem(where, t("grade.unknown_lab", name=adir.name,
                                                 labs="、".join(LABS), hint=hint), student))
                continue
            nb = adir / f"{adir.name}.ipynb"
            if not nb.exists():
                others = sorted(p.name for p in adir.glob("*.ipynb"))
                problems.append(Problem(where, t("grade.missing_nb", want=nb.name,
                                                 found=", ".join(others) or "—"), student, adir.name))
                continue
            try:
                nbformat.read(nb, as_version=4)
            except Exception as e:  # any reader error: the file is not a notebook we can run
                problems.append(Problem(where, t("grade.bad_json", name=nb.name,
                                                 err=str(e).splitlines()[0][:120]), student, adir.name))
                continue
            subs.append(Submission(student, adir.name, nb))
    return subs, problems
