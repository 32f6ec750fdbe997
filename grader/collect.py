"""Read a folder of submissions (``<dir>/<student>/<lab>/<lab>.ipynb``, nbgrader's ``submitted``
layout) into what can be graded, and one clear line for everything that cannot."""

from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.course import LABS, MAX_NOTEBOOK, printable
from labcore import safefs
from labs.grading.messages import t

__all__ = ["Problem", "Submission", "collect"]

_STUDENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


@dataclass(frozen=True)
class Submission:
    student: str
    lab: str
    top: Path  # the submissions folder: the notebook is ``top/student/lab/lab.ipynb``, read through safefs

    @property
    def notebook(self) -> Path:
        """Its path, for messages only: read it with :meth:`read` (no link followed)."""
        return self.top / self.student / self.lab / f"{self.lab}.ipynb"

    def read(self, limit: int = MAX_NOTEBOOK) -> bytes:
        """The notebook's bytes, read again without following a link anywhere below the folder
        (it may have changed since it was collected): :class:`safefs.Refused` or OSError if unusable."""
        data = safefs.read_under(self.top, self.student, self.lab, f"{self.lab}.ipynb", limit=limit, strict=True)
        assert data is not None
        return data


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


def _refused(e: OSError) -> str:
    """Why a file is not gradable, in the course's language."""
    why = str(e) if isinstance(e, safefs.Refused) else (e.strerror or str(e))
    if "link" in why:
        return t("grade.refused.link")
    if "FIFO" in why:
        return t("grade.refused.fifo")
    if "socket" in why or "No such device" in why:  # a unix socket cannot be opened (ENXIO)
        return t("grade.refused.socket")
    if "device" in why:
        return t("grade.refused.device")
    if "larger" in why:
        return t("grade.refused.big", mb=MAX_NOTEBOOK >> 20)
    return t("grade.refused.other", why=printable(why, 80))


def _kind_reason(mode: int) -> str:
    kind = safefs.kind_of(mode)
    return _refused(safefs.Refused(kind))


def collect(root: Path, limit: int = MAX_NOTEBOOK) -> tuple[list[Submission], list[Problem]]:
    """Every ``<student>/<lab>/<lab>.ipynb`` below ``root`` (the instructor's folder; below it nothing is
    trusted): read through :mod:`labcore.safefs`, so a link, a FIFO, a device, a socket or a file larger
    than ``limit`` is "not gradable: <reason>", one line each, never followed, never waited on."""
    subs: list[Submission] = []
    problems: list[Problem] = []
    root = Path(os.path.realpath(root))
    if not root.is_dir():
        return [], [Problem(printable(str(root)), t("grade.no_dir", path=printable(str(root))))]
    for sname, smode in safefs.entries_under(root):
        shown = printable(sname, 60)
        if sname.startswith("."):
            continue
        if not stat.S_ISDIR(smode):
            problems.append(Problem(shown, t("grade.loose_file", name=shown) if stat.S_ISREG(smode)
                                    else t("grade.not_gradable", reason=_kind_reason(smode))))
            continue
        if not _STUDENT.match(sname):
            problems.append(Problem(shown, t("grade.bad_student", name=shown)))
            continue
        student = sname
        for aname, amode in safefs.entries_under(root, student):
            where = f"{student}/{printable(aname, 60)}"
            if aname.startswith("."):
                continue
            if not stat.S_ISDIR(amode):
                problems.append(Problem(where, t("grade.loose_file", name=where) if stat.S_ISREG(amode)
                                        else t("grade.not_gradable", reason=_kind_reason(amode)), student))
                continue
            if aname not in LABS:
                guess = _guess(aname)
                hint = t("grade.did_you_mean", lab=guess) if guess else ""
                problems.append(Problem(where, t("grade.unknown_lab", name=printable(aname, 60),
                                                 labs="、".join(LABS), hint=hint), student))
                continue
            lab = aname
            want = f"{lab}.ipynb"
            entries = dict(safefs.entries_under(root, student, lab))
            if want not in entries:
                others = sorted(printable(n, 60) for n in entries if n.endswith(".ipynb"))
                problems.append(Problem(where, t("grade.missing_nb", want=want, found=", ".join(others) or "—"),
                                        student, lab))
                continue
            if not stat.S_ISREG(entries[want]):  # a link, a FIFO, a device, a socket: not even opened
                problems.append(Problem(where, t("grade.not_gradable", reason=f"{want}: {_kind_reason(entries[want])}"),
                                        student, lab))
                continue
            try:
                data = safefs.read_under(root, student, lab, want, limit=limit, strict=True)
            except OSError as e:
                problems.append(Problem(where, t("grade.not_gradable", reason=f"{want}: {_refused(e)}"), student, lab))
                continue
            try:
                nbformat.reads((data or b"").decode("utf-8"), as_version=4)
            except Exception as e:  # any reader error: the file is not a notebook we can run
                err = printable(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)
                problems.append(Problem(where, t("grade.bad_json", name=want, err=err), student, lab))
                continue
            subs.append(Submission(student, lab, root))
    return subs, problems
