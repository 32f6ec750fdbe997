"""``./lab grade autograde|all`` as root: every submission in a sandbox of its own, always a whole batch.

Root runs this (``sudo ./lab grade ...``); ``grader.cli`` parses the command line and hands over.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pwd
import io
import sys
import time
import urllib.request
from pathlib import Path

from asroot import gradeaccounts
from asroot.grading.runner import Context, grade_all
from asroot.grading.sandbox import CONTROL, Limits, Sandbox
from grader.cli import course_of, parse
from grader.cli import main as account_main
from grader.collect import collect
from grader.course import Course
from grader.report import SubmissionReport, build, write
from labcore import safefs
from labcore.errors import LabFailure
from labcore.state import REPO, load_state
from labs.grading.messages import t

__all__ = ["autograde", "main", "mark_not_graded", "sweep"]


def say(msg: str) -> None:
    print(f"\033[1m[grade]\033[0m {msg}", file=sys.stderr, flush=True)


def _mirror_ok(mirror: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{mirror}/v2/", timeout=3):
            return True
    except OSError:
        return False


def _lock() -> int:
    """One ``./lab grade`` at a time on a machine (the sweep would take another run's sandboxes)."""
    CONTROL.mkdir(mode=0o700, parents=True, exist_ok=True)
    with safefs.open_private(CONTROL / "lock", "ab") as f:
        fd = os.dup(f.fileno())
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


def results_dir(path: Path) -> Path:
    """``--out``: made 0700 (parents too) under umask 077, or an existing directory of root's, set to 0700
    (not a link, not another account's: they could read, or swap, what is written there)."""
    path = Path(os.path.abspath(path))
    try:
        safefs.private_dir(path)
    except LabFailure:
        raise LabFailure(f"{path} is not a directory of root's: "
                         "name a new directory for --out (root makes it, 0700).") from None
    return path


def copy_feedback(course: Course, out: Path, batch: set[tuple[str, str]]) -> int:
    """This batch's learners' feedback into ``out/feedback`` (what was there before is removed): never
    the feedback of other learners the course graded before. Returns how many files."""
    dest = out / "feedback"
    safefs.remove_tree(dest)
    n = 0
    for student, lab in sorted(batch):
        src = course.feedback(student, lab)
        data = safefs.read_under(course.root, "feedback", student, lab, src.name, limit=64 << 20)
        if data is not None:
            safefs.write_under(out, ["feedback", student, lab], src.name, data)
            n += 1
    return n


def autograde(course: Course, args: argparse.Namespace) -> int:
    os.umask(0o077)  # everything this run writes (course, results, logs) is root's alone
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
        say(f"grading {len(subs)} submissions, {args.jobs} at a time, "
            "each as its own account on its own rootless engine")
        t0 = time.monotonic()
        hide = tuple(str(p) for p in (REPO / "labs" / "source", REPO / "labs" / "src", REPO / "tests", REPO / ".git",
                                      REPO / ".lab", course.root, args.submissions.resolve(), Path("/root"), CONTROL,
                                      Path("/var/lib/dockerlab")))
        ctx = Context(course, mirror, binaries, args.cell_timeout, args.submission_timeout,
                      Limits(memory_mb=args.memory_mb), hide, os.environ.get("DOCKERLAB_LANG", "zh"),
                      hidden_tests=args.feedback_hidden_tests)
        outcomes = grade_all(ctx, subs, accounts, jobs=args.jobs)
        took = time.monotonic() - t0
    finally:
        os.close(lock)
    reports = build(course, outcomes, problems, args.cell_timeout)
    out = results_dir(args.out or course.root / "results")
    _, txt = write(reports, out)
    csv = course.export(out / "grades.csv")
    mark_not_graded(csv, reports)
    course.generate_feedback()
    n = copy_feedback(course, out, {(s.student, s.lab) for s in subs})
    print(safefs.read_private(txt).decode(), end="")
    per = took / len(subs) if subs else 0.0
    peak = max((o.peak_memory for o in outcomes), default=0) / 2**20
    not_graded = sum(1 for o in outcomes if o.not_graded)
    say(f"{len(subs)} graded in {took:.0f} s ({per:.1f} s per submission, {args.jobs} at a time; "
        f"peak memory of one sandbox {peak:.0f} MB); {not_graded} not graded; {len(problems)} not gradable")
    say(f"gradebook {csv}; report {txt}; {n} feedback files in {out / 'feedback'}")
    say(f"{out} and everything in it are root's alone (0700, files 0600): hand each learner their own feedback"
        + ("; the feedback shows the hidden tests (--feedback-hidden-tests)" if args.feedback_hidden_tests else
           "; the feedback leaves the hidden tests out"))
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
    rows = list(csv.reader(io.StringIO(safefs.read_private(csv_path).decode(), newline="")))
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
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    safefs.write_private(csv_path, buf.getvalue())


def main(argv: list[str]) -> int:
    """``sudo ./lab grade ...``: autograde and all here, in sandboxes; generate, export and feedback
    on root's course as ``grader.cli`` does them."""
    args = parse(argv)
    if args.cmd not in ("autograde", "all"):
        return account_main(argv)
    try:
        return autograde(course_of(args), args)
    except (RuntimeError, LabFailure) as e:
        print(f"\033[1;31m[grade]\033[0m {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
