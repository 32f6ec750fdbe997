"""The nbgrader course directory ``./lab grade`` works in, and nbgrader's own commands on it.

Layout (nbgrader's): ``source/`` (copied from ``labs/source``), ``release/`` (student versions),
``submitted/<student>/<lab>/``, ``autograded/``, ``feedback/``, ``gradebook.db``; plus
``grading/<student>-<lab>/`` with each submission's logs. Default: ``$LAB_HOME/grading``; as root
:data:`ROOT_COURSE` (nbgrader runs Python from its course directory: its ``nbgrader_config.py``, modules
beside it on ``sys.path``), and root refuses a course directory any other account could change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcore.errors import LabFailure
from labcore.state import GRADE_BASE as BASE
from labcore.state import REPO, paths

__all__ = ["LABS", "ROOT_COURSE", "SOURCE", "Course", "read_untrusted", "untrusted_by_root", "untrusted_names"]

ROOT_COURSE = BASE / "course"  # root's own course directory (0700)

_CHECK_CALL = re.compile(r"independently\(\s*[\"']([\w.]+)[\"']")
MAX_NOTEBOOK = 20 << 20
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _open_under(top: Path, rel: tuple[str, ...], *, directory: bool) -> int:
    """An fd of ``top/rel...`` opened without following a link at ``top`` or at any step below it."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)]
    try:
        for i, part in enumerate(rel):
            last = i == len(rel) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if directory or not last else os.O_NONBLOCK)
            fds.append(os.open(part, flags, dir_fd=fds[-1]))
        return fds.pop()
    finally:
        for fd in fds:
            os.close(fd)


def read_untrusted(top: Path, *rel: str, limit: int = MAX_NOTEBOOK) -> bytes | None:
    """A regular file ``top/rel...`` a grading account wrote, read by root without following a link
    anywhere below ``top`` (the account's HOME: root's own directories above it); None if it is missing,
    not a regular file, or larger than ``limit``. Read after the account's processes are stopped."""
    try:
        fd = _open_under(top, rel, directory=False)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        return f.read(limit + 1)[:limit]


def untrusted_names(top: Path, *rel: str) -> list[str]:
    """The names in the directory ``top/rel...`` (no link followed below ``top``); [] if there is none."""
    try:
        fd = _open_under(top, rel, directory=True)
    except OSError:
        return []
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def untrusted_by_root(path: Path) -> str:
    """Empty if no account but root can change ``path`` or any directory above it (each one root's and
    not writable by group or others, a sticky one such as /tmp only above a root-owned one); else why."""
    real = Path(os.path.realpath(path))
    chain = [*reversed(real.parents), real]
    for i, p in enumerate(chain):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return ""  # root makes the rest
        except OSError as e:
            return f"{p} cannot be checked ({e.strerror})"
        if st.st_uid != 0:
            return f"{p} belongs to uid {st.st_uid}"
        last = i == len(chain) - 1
        if st.st_mode & 0o022 and (last or not st.st_mode & stat.S_ISVTX):
            return f"{p} is writable by other accounts"
    return ""


SOURCE = REPO / "labs" / "source"
LABS = ("lab1", "lab2", "lab3", "lab4")


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def default(cls) -> Course:
        return cls(ROOT_COURSE if os.geteuid() == 0 else paths().home / "grading")

    @property
    def db(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db}"

    def submitted(self, student: str, lab: str) -> Path:
        return self.root / "submitted" / student / lab

    def autograded(self, student: str, lab: str) -> Path:
        return self.root / "autograded" / student / lab / f"{lab}.ipynb"

    def feedback(self, student: str, lab: str) -> Path:
        return self.root / "feedback" / student / lab / f"{lab}.html"

    def release(self, lab: str) -> Path:
        return self.root / "release" / lab / f"{lab}.ipynb"

    def workdir(self, student: str, lab: str) -> Path:
        return self.root / "grading" / f"{student}-{lab}"

    def ensure(self) -> None:
        if os.geteuid() == 0 and (why := untrusted_by_root(self.root)):
            raise LabFailure(f"As root, ./lab grade works only in a course directory no other account can "
                             f"change, and {why}: leave --course out (root's course is {ROOT_COURSE}) or name "
                             "a directory of root's.")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = (f"c = get_config()  # noqa: F821\n"
                  f"load_subconfig({str(REPO / 'labs' / 'nbgrader_config.py')!r})  # noqa: F821\n"
                  f"c.CourseDirectory.root = {str(self.root)!r}\n")
        target = self.root / "nbgrader_config.py"
        if not target.exists() or target.read_text() != config:
            target.write_text(config)

    def nbgrader(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``nbgrader ARGS`` in the course directory; output captured. ``-I``: no module from the
        working directory, PYTHONPATH or the user's site (nbgrader itself adds the course directory,
        which :meth:`ensure` has checked)."""
        self.ensure()
        # nbgrader runs `alembic` from PATH: the venv's bin directory must come first
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, **(env or {})}
        env["PATH"] = f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}"
        return subprocess.run([sys.executable, "-I", "-m", "nbgrader", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, check=False)

    def generate(self, labs: tuple[str, ...] = LABS) -> list[Path]:
        """Copy the source assignments in and make the student versions (hidden tests removed)."""
        self.ensure()
        for lab in labs:
            dest = self.root / "source" / lab
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(SOURCE / lab, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        # one nbgrader process for all of them (its start-up alone takes seconds)
        which = "lab*" if set(labs) == set(LABS) else labs[0]
        for target in ([which] if which == "lab*" else list(labs)):
            out = self.nbgrader("generate_assignment", target, "--force")
            if out.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {target} failed:\n"
                                   f"{(out.stdout + out.stderr)[-2000:]}")
        return [self.release(lab) for lab in labs]

    def generated(self) -> bool:
        return self.db.exists() and all(self.release(lab).exists() for lab in LABS)

    def add_students(self, students: set[str]) -> None:
        """Every learner is in the gradebook, so a missing or broken submission exports as 0."""
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url, "dockerlab") as gb:
            for s in sorted(students):
                gb.update_or_create_student(s)

    def export(self, to: Path) -> Path:
        to.parent.mkdir(parents=True, exist_ok=True)
        out = self.nbgrader("export", "--to", str(to))
        if out.returncode != 0:
            raise RuntimeError(f"nbgrader export failed:\n{(out.stdout + out.stderr)[-2000:]}")
        return to

    # -- what a grading sandbox gets, and what comes back -------------------------------------------
    def template(self, lab: str) -> Path:
        """A course of its own for ``lab`` alone (no learner, no other lab), made once per batch: its
        gradebook and config are what a sandbox's nbgrader gets."""
        return self.root / "sandbox-template" / lab

    def make_templates(self, labs: set[str]) -> None:
        """The instructor's gradebook without learners and without the other labs, one per lab."""
        from nbgrader.api import Gradebook

        for lab in sorted(labs):
            t = self.template(lab)
            shutil.rmtree(t, ignore_errors=True)
            t.mkdir(parents=True)
            shutil.copy(self.db, t / "gradebook.db")
            with Gradebook(f"sqlite:///{t / 'gradebook.db'}", "dockerlab") as gb:
                for student in gb.students:
                    gb.remove_student(student.id)
                for other in [a.name for a in gb.assignments if a.name != lab]:
                    gb.remove_assignment(other)

    def checks_of(self, lab: str) -> dict[str, list[str]]:
        """grade cell -> the checks its hidden test asks for (``independently("lab1.pin", ...)``)."""
        import nbformat

        nb = nbformat.read(self.root / "source" / lab / f"{lab}.ipynb", as_version=4)
        return {c.metadata["nbgrader"]["grade_id"]: _CHECK_CALL.findall(c.source) for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade")}

    def record_grades(self, student: str, lab: str, verdicts: dict[str, dict[str, Any]],
                      autograded: bytes | None, not_graded: str = "") -> dict[str, tuple[bool, str]]:
        """Write the grades the check service recorded into the gradebook and the autograded notebook
        (each test cell's output replaced by the recorded verdict). Returns grade cell -> (ok, reason).

        ``not_graded``: the grader could not grade this submission; its grades stay empty (nbgrader
        then lists it as needing manual grading)."""
        import nbformat
        from nbgrader.api import Gradebook

        from labs.grading.messages import t

        results: dict[str, tuple[bool, str]] = {}
        checked: set[str] = set()
        for cell, names in self.checks_of(lab).items():
            seen = [verdicts.get(n) for n in names]
            if not names or any(v is None for v in seen):
                missing = [n for n, v in zip(names, seen) if v is None]
                results[cell] = (False, not_graded or t("grade.not_checked", checks=", ".join(missing) or "—"))
            else:
                checked.add(cell)
                bad = [v for v in seen if v and not v["ok"]]
                results[cell] = (not bad, str((bad or seen)[0]["reason"]))  # type: ignore[index]
        with Gradebook(self.db_url, "dockerlab") as gb, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings when it adds a submission
            gb.update_or_create_submission(lab, student)
            for cell in gb.find_notebook(lab, lab).grade_cells:
                grade = gb.find_grade(cell.name, lab, lab, student)
                ok = results.get(cell.name, (False, ""))[0]
                grade.auto_score = None if not_graded else (float(cell.max_score) if ok else 0.0)
                grade.manual_score = None
            gb.db.commit()
        nb = None
        if autograded is not None:
            try:
                nb = nbformat.reads(autograded.decode("utf-8", "replace"), as_version=4)
            except Exception:
                nb = None
        if nb is None:
            nb = nbformat.read(self.submitted(student, lab) / f"{lab}.ipynb", as_version=4)
        for c in nb.cells:  # a check that never ran: say what the notebook's own output says happened instead
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid in results and not results[gid][0] and not not_graded and gid not in checked:
                errors = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
                if errors:
                    what = _ANSI.sub("", f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}")[:200]
                    results[gid] = (False, f"{results[gid][1]}; {what}")
        source = {c.metadata.get("nbgrader", {}).get("grade_id"): c
                  for c in nbformat.read(self.root / "source" / lab / f"{lab}.ipynb", as_version=4).cells}
        for c in nb.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid in results and c.cell_type == "code":
                ok, reason = results[gid]
                c.source = source[gid].source
                c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"✔ {reason}\n")] if ok else \
                    [nbformat.v4.new_output("error", ename="AssertionError", evalue=reason,
                                            traceback=[f"AssertionError: {reason}"])]
        dest = self.autograded(student, lab)
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
        (dest.parent / "checks.json").write_text(json.dumps(verdicts, ensure_ascii=False, indent=1))
        return results

    def generate_feedback(self) -> list[Path]:
        out = self.nbgrader("generate_feedback", "lab*", "--force")
        if out.returncode != 0:
            raise RuntimeError(f"nbgrader generate_feedback failed:\n{(out.stdout + out.stderr)[-2000:]}")
        return sorted((self.root / "feedback").glob("*/*/*.html"))
