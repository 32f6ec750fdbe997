"""The nbgrader course directory ``./lab grade`` works in, and nbgrader's own commands on it.

Layout (nbgrader's): ``source/`` (copied from ``labs/source``), ``release/`` (student versions),
``submitted/<student>/<lab>/``, ``autograded/``, ``feedback/``, ``gradebook.db``; plus
``grading/<student>-<lab>/`` with each submission's logs. Default: ``$LAB_HOME/grading``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labctl.state import REPO, paths

__all__ = ["LABS", "SOURCE", "Course"]

SOURCE = REPO / "labs" / "source"
LABS = ("lab1", "lab2", "lab3", "lab4")


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def default(cls) -> Course:
        return cls(paths().home / "grading")

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
        self.root.mkdir(parents=True, exist_ok=True)
        config = (f"c = get_config()  # noqa: F821\n"
                  f"load_subconfig({str(REPO / 'labs' / 'nbgrader_config.py')!r})  # noqa: F821\n"
                  f"c.CourseDirectory.root = {str(self.root)!r}\n")
        target = self.root / "nbgrader_config.py"
        if not target.exists() or target.read_text() != config:
            target.write_text(config)

    def nbgrader(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``nbgrader ARGS`` in the course directory; output captured."""
        self.ensure()
        # nbgrader runs `alembic` from PATH: the venv's bin directory must come first
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, **(env or {})}
        env["PATH"] = f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}"
        return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=self.root, env=env,
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

    def generate_feedback(self) -> list[Path]:
        out = self.nbgrader("generate_feedback", "lab*", "--force")
        if out.returncode != 0:
            raise RuntimeError(f"nbgrader generate_feedback failed:\n{(out.stdout + out.stderr)[-2000:]}")
        return sorted((self.root / "feedback").glob("*/*/*.html"))
