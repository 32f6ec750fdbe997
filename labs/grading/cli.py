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
import fcntl
import os
import pwd
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from labctl import gradeaccounts
from labctl.proc import LabFailure
from labctl.state import REPO, load_state

from .collect import collect
from .course import Course
from .messages import t
from .report import SubmissionReport, build, write
from .runner import Context, grade_all
from .sandbox import CONTROL, Limits, Sandbox

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
        p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                       help=f"memory limit of one submission's sandbox (default {Limits.memory_mb})")
        p.add_argument("--out", type=Path, default=None, help="where grades.csv, feedback/ and report.* go")
    e = sub.add_parser("export", help="gradebook as CSV")
    e.add_argument("--to", type=Path, default=None)
    sub.add_parser("feedback", help="HTML feedback per learner and lab")
    return ap


def _mirror_ok(mirror: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{mirror}/v2/", timeout=3):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    course = Course(args.course.resolve()) if args.course else Course.default()
    try:
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
        return _autograde(course, args)
    except (RuntimeError, LabFailure) as e:
        print(f"\033[1;31m[grade]\033[0m {e}", file=sys.stderr)
        return 1


def _lock() -> int:
    """One ``./lab grade`` at a time on a machine (the sweep would take another run's sandboxes)."""
    CONTROL.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(CONTROL / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(t("grade.busy")) from None
    return fd


def sweep(accounts: list[str]) -> None:
    """What an earlier run that crashed left: processes, mounts, cgroups, helpers, files."""
    for a in accounts:
        Sandbox(a).sweep()


def _autograde(course: Course, args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise RuntimeError("grading makes a throwaway account and sandbox per submission: run 'sudo ./lab grade ...'")
    if not 1 <= args.jobs <= gradeaccounts.POOL_MAX:
        raise RuntimeError(f"--jobs must be between 1 and {gradeaccounts.POOL_MAX}")
    course.ensure()  # a course directory no other account can change (nbgrader runs its Python as root)
    mirror = load_state().mirror
    if not mirror or not _mirror_ok(mirror):
        print(f"\033[1;31m[grade]\033[0m {t('grade.engine_missing', mirror=mirror or '?')}", file=sys.stderr)
        return 1
    lock = _lock()
    try:
        accounts = [pw.pw_name for pw in gradeaccounts.ensure_pool(args.jobs)]
        sweep([a for a in gradeaccounts.pool_names(gradeaccounts.POOL_MAX) if _exists(a)])
        binaries = gradeaccounts.engine_binaries()
        if args.cmd == "all" or not course.generated():
            say("generating the student versions (nbgrader generate_assignment)")
            course.generate()
        subs, problems = collect(args.submissions)
        for p in problems:
            say(f"{p.where}: {p.message}")
        course.add_students({s.student for s in subs} | {p.student for p in problems if p.student})
        course.make_templates({s.lab for s in subs})
        say(f"grading {len(subs)} submissions, {args.jobs} at a time, each as its own account on its own rootless engine")
        t0 = time.monotonic()
        hide = tuple(str(p) for p in (REPO / "labs" / "source", REPO / "labs" / "src", REPO / "tests", REPO / ".git", REPO / ".lab",
                                      course.root, args.submissions.resolve(), Path("/root"), CONTROL,
                                      Path("/var/lib/dockerlab")))
        ctx = Context(course, mirror, binaries, args.cell_timeout, args.submission_timeout,
                      Limits(memory_mb=args.memory_mb), hide, os.environ.get("DOCKERLAB_LANG", "zh"))
        outcomes = grade_all(ctx, subs, accounts, jobs=args.jobs)
        took = time.monotonic() - t0
    finally:
        os.close(lock)
    reports = build(course, outcomes, problems, args.cell_timeout)
    out = (args.out or course.root / "results").resolve()
    _, txt = write(reports, out)
    csv = course.export(out / "grades.csv")
    mark_not_graded(csv, reports)
    n = len(course.generate_feedback())
    if (course.root / "feedback").exists():
        shutil.copytree(course.root / "feedback", out / "feedback", dirs_exist_ok=True)
    print(txt.read_text(), end="")
    per = took / len(subs) if subs else 0.0
    peak = max((o.peak_memory for o in outcomes), default=0) / 2**20
    not_graded = sum(1 for o in outcomes if o.not_graded)
    say(f"{len(subs)} graded in {took:.0f} s ({per:.1f} s per submission, {args.jobs} at a time; "
        f"peak memory of one sandbox {peak:.0f} MB); {not_graded} not graded; {len(problems)} not gradable")
    say(f"gradebook {csv}; report {txt}; {n} feedback files in {out / 'feedback'}")
    return 0


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def mark_not_graded(csv_path: Path, reports: list[SubmissionReport]) -> None:
    """nbgrader's CSV has no "not graded": such rows get an empty score and the reason in a last column."""
    import csv

    why = {(r.student, r.lab): r.problem for r in reports if getattr(r, "not_graded", False)}
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    head = rows[0]
    si, ai, sc = head.index("student_id"), head.index("assignment"), head.index("score")
    rows[0] = [*head, "note"]
    for row in rows[1:]:
        note = why.get((row[si], row[ai]), "")
        if note:
            row[sc] = ""
        row.append(note)
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
