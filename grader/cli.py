"""``./lab grade``: nbgrader's workflow for the labs, each submission on its own throwaway engine.

    ./lab grade generate                    student versions -> <course>/release/labN/labN.ipynb
    ./lab grade autograde SUBMISSIONS       autograde <SUBMISSIONS>/<student>/<labN>/labN.ipynb
    ./lab grade export [--to FILE]          gradebook as CSV (nbgrader export)
    ./lab grade feedback                    one HTML per learner and lab (nbgrader generate_feedback)
    ./lab grade all SUBMISSIONS [--out DIR] all of the above; grades.csv, feedback/, report.* in DIR

Common options: --course DIR (default $LAB_HOME/grading; as root /var/lib/dockerlab-grade/course, and
only a directory no other account can change), --jobs N (parallel submissions,
default 2), --cell-timeout S (default 60), --submission-timeout S (default 600).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.course import Course
from labcore.errors import LabFailure

MEMORY_MB = 1536  # a submission's sandbox: engine, kernel and tmpfs together (asroot.grading.sandbox.Limits)

__all__ = ["main"]


def say(msg: str) -> None:
    print(f"\033[1m[grade]\033[0m {msg}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="./lab grade", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--course", type=Path, default=None, help="nbgrader course directory")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("generate", help="make the student versions (hidden tests removed)")
    for name in ("autograde", "all"):
        p = sub.add_parser(name, help="grade a folder of submissions" if name == "autograde"
                           else "generate, autograde, export and feedback in one go")
        p.add_argument("submissions", type=Path, help="folder of <student>/<labN>/labN.ipynb")
        p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
        p.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell (default 60)")
        p.add_argument("--submission-timeout", type=int, default=600,
                       help="seconds per submission before it is stopped (default 600)")
        p.add_argument("--memory-mb", type=int, default=MEMORY_MB,
                       help=f"memory limit of one submission's sandbox (default {MEMORY_MB})")
        p.add_argument("--out", type=Path, default=None,
                       help="where grades.csv, feedback/ and report.* go (root's alone: 0700, files 0600)")
        p.add_argument("--feedback-hidden-tests", action="store_true",
                       help="show the hidden tests in the learners' feedback (default: they are left out)")
    e = sub.add_parser("export", help="gradebook as CSV")
    e.add_argument("--to", type=Path, default=None)
    sub.add_parser("feedback", help="HTML feedback per learner and lab")
    return ap


def parse(argv: list[str]) -> argparse.Namespace:
    return _parser().parse_args(argv)


def course_of(args: argparse.Namespace) -> Course:
    return Course(args.course.resolve()) if args.course else Course.default()


def main(argv: list[str]) -> int:
    """generate, export and feedback, as whoever runs ``./lab grade``; autograde and all are root's
    (``asroot.grading.autograde``, which root's ``./lab`` calls directly)."""
    args = parse(argv)
    try:
        if args.cmd in ("autograde", "all"):
            raise LabFailure("Grading makes a throwaway account and sandbox per submission: "
                             "run 'sudo ./lab grade ...'.")
        course = course_of(args)
        if args.cmd == "generate":
            for nb in course.generate():
                say(f"student version: {nb}")
            return 0
        if args.cmd == "export":
            say(f"gradebook: {course.export(args.to or course.root / 'grades.csv')}")
            return 0
        if args.cmd == "feedback":
            say(f"{len(course.generate_feedback())} feedback files in {course.root / 'feedback'}")
            return 0
        raise AssertionError(args.cmd)
    except (RuntimeError, LabFailure) as e:
        print(f"\033[1;31m[grade]\033[0m {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
