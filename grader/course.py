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
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcore.errors import LabFailure
from labcore import safefs
from labcore.safefs import untrusted_by_root
from labcore.state import GRADE_BASE as BASE
from labcore.state import REPO, paths

__all__ = ["LABS", "MAX_NOTEBOOK", "ROOT_COURSE", "SOURCE", "Course", "printable"]

ROOT_COURSE = BASE / "course"  # root's own course directory (0700)

_CHECK_CALL = re.compile(r"independently\(\s*[\"']([\w.]+)[\"']")
MAX_NOTEBOOK = 20 << 20
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, limit: int = 400) -> str:
    """``text`` safe for root's terminal and the report: colour codes and control characters (escape
    sequences, carriage returns, bidi overrides) removed, newlines and tabs as spaces, at most ``limit``
    characters."""
    s = _CONTROL.sub("", _ANSI.sub("", str(text)).replace("\n", " ").replace("\t", " ").replace("\r", " "))
    return s if len(s) <= limit else s[:limit - 1] + "…"


MAX_OUTPUT = 20_000  # characters of one output kept in an autograded notebook (and so in its feedback)
MAX_OUTPUTS = 20  # outputs kept per cell


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    """A cell's ``metadata.nbgrader`` if it is a mapping (a submission may make it null, a list, a number)."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def grade_id_of(cell: Any) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def _outputs(cell: Any) -> list[dict[str, Any]]:
    outs = cell.get("outputs") if isinstance(cell, dict) else None
    return [o for o in outs if isinstance(o, dict)] if isinstance(outs, list) else []


def _trim(nb: Any) -> None:
    """Outputs of a submitted notebook cut to what feedback needs: at most :data:`MAX_OUTPUTS` per cell,
    text at most :data:`MAX_OUTPUT` characters, and of rich data only text and images of that size."""
    for c in nb.cells:
        if "outputs" not in c:
            continue
        outs = _outputs(c)[:MAX_OUTPUTS]
        for o in outs:
            for key in ("text", "evalue", "ename"):
                if isinstance(o.get(key), str) and len(o[key]) > MAX_OUTPUT:
                    o[key] = o[key][:MAX_OUTPUT] + "\n[…]"
            if isinstance(o.get("traceback"), list):
                o["traceback"] = [str(x)[:MAX_OUTPUT] for x in o["traceback"][:50]]
            if isinstance(o.get("data"), dict):
                o["data"] = {k: v for k, v in o["data"].items()
                             if k in ("text/plain", "image/png", "text/html") and isinstance(v, str)
                             and len(v) <= (1 << 20 if k == "image/png" else MAX_OUTPUT)}
        c["outputs"] = outs


SOURCE = REPO / "labs" / "source"
LABS = ("lab1", "lab2", "lab3", "lab4", "lab5")


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
                if nbgrader_meta(c).get("grade")}

    def record_grades(self, student: str, lab: str, verdicts: dict[str, dict[str, Any]],
                      autograded: bytes | None, not_graded: str = "",
                      hidden_tests: bool = False) -> dict[str, tuple[bool, str]]:
        """Write the grades the check service recorded into the gradebook and the autograded notebook
        (each test cell's output replaced by the recorded verdict). Returns grade cell -> (ok, reason).

        ``not_graded``: the grader could not grade this submission; its grades stay empty (nbgrader
        then lists it as needing manual grading). ``hidden_tests``: the test cells keep the instructor's
        hidden tests (and so does the feedback made from them); by default they get the student
        version's (hidden tests removed)."""
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
                results[cell] = (not bad, printable((bad or seen)[0]["reason"]))  # type: ignore[index]
        with Gradebook(self.db_url, "dockerlab") as gb, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings when it adds a submission
            gb.update_or_create_submission(lab, student)
            for cell in gb.find_notebook(lab, lab).grade_cells:
                grade = gb.find_grade(cell.name, lab, lab, student)
                ok = results.get(cell.name, (False, ""))[0]
                grade.auto_score = None if not_graded else (float(cell.max_score) if ok else 0.0)
                grade.manual_score = None
            gb.db.commit()
        try:
            self._write_autograded(student, lab, results, checked, autograded, not_graded, hidden_tests)
        except Exception as e:  # even the instructor's own version failed to write: the grades stand
            for gid, (ok, reason) in results.items():
                results[gid] = (ok, f"{reason}; {t('grade.malformed', err=printable(type(e).__name__, 80))}")
        dest = self.autograded(student, lab)
        dest.parent.mkdir(parents=True, exist_ok=True)
        (dest.parent / "checks.json").write_text(json.dumps(verdicts, ensure_ascii=False, indent=1))
        return results

    def _write_autograded(self, student: str, lab: str, results: dict[str, tuple[bool, str]], checked: set[str],
                          autograded: bytes | None, not_graded: str, hidden_tests: bool = False) -> None:
        """The autograded notebook: the sandbox's (or the submitted one), each test cell replaced by the
        instructor's with the recorded verdict as its output, other outputs trimmed. A notebook that
        cannot be read or written (odd metadata, deep nesting) is replaced by the student version with
        the verdicts, and the reasons say so."""
        import nbformat

        from labs.grading.messages import t

        nb = None
        for raw in (autograded, safefs.read_under(self.root, "submitted", student, lab, f"{lab}.ipynb")):
            if raw is None:
                continue
            try:
                nb = nbformat.reads(raw.decode("utf-8", "replace"), as_version=4)
                _trim(nb)
                break
            except Exception:  # RecursionError too: the next one, then the student version
                nb = None
        malformed = nb is None
        if nb is None:
            nb = nbformat.read(self.release(lab), as_version=4)
        for c in nb.cells:  # nbgrader's feedback reads metadata.nbgrader as a mapping: only a sound one is kept
            meta: dict[str, Any] = {"nbgrader": nbgrader_meta(c)} if grade_id_of(c) or not nbgrader_meta(c) else {}
            if not meta.get("nbgrader"):
                meta = {}
            tags = c.get("metadata", {}).get("tags") if isinstance(c.get("metadata"), dict) else None
            if isinstance(tags, list) and all(isinstance(x, str) for x in tags):
                meta["tags"] = tags[:20]
            c["metadata"] = nbformat.from_dict(meta)
        for c in nb.cells:  # a check that never ran: say what the notebook's own output says happened instead
            gid = grade_id_of(c)
            if gid in results and not results[gid][0] and not not_graded and gid not in checked:
                errors = [o for o in _outputs(c) if o.get("output_type") == "error"]
                if errors:
                    what = printable(f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}", 200)
                    results[gid] = (False, f"{results[gid][1]}; {what}")
        if malformed:
            for gid, (ok, reason) in results.items():
                results[gid] = (ok, f"{reason}; {t('grade.malformed', err='JSON')}")
        shown = self.root / "source" / lab / f"{lab}.ipynb" if hidden_tests else self.release(lab)
        source = {grade_id_of(c): c for c in nbformat.read(shown, as_version=4).cells}
        for c in nb.cells:
            gid = grade_id_of(c)
            if gid in results and c.get("cell_type") == "code" and gid in source:
                ok, reason = results[gid]
                c.source = source[gid].source
                c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"✔ {reason}\n")] if ok else \
                    [nbformat.v4.new_output("error", ename="AssertionError", evalue=reason,
                                            traceback=[f"AssertionError: {reason}"])]
        dest = self.autograded(student, lab)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = nbformat.writes(nb)
        except Exception:
            if malformed:
                raise
            nb = nbformat.read(self.release(lab), as_version=4)
            text = nbformat.writes(nb)
        dest.write_text(text)

    def generate_feedback(self) -> list[Path]:
        out = self.nbgrader("generate_feedback", "lab*", "--force")
        made = sorted((self.root / "feedback").glob("*/*/*.html"))
        if out.returncode != 0 and not made:
            raise RuntimeError(f"nbgrader generate_feedback failed:\n{(out.stdout + out.stderr)[-2000:]}")
        return made
