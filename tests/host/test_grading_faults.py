"""The grader's own failures: a crashed ``./lab grade`` leaves nothing the next one does not sweep,
and a submission whose engine cannot start is "not graded", not 0."""

from __future__ import annotations

import csv
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labengine.enginepkgs import EngineBinaries
from asroot.gradeaccounts import BASE, account_pids, engine_binaries, ensure_pool
from labcore.state import REPO, load_state
from asroot.grading.autograde import mark_not_graded, sweep
from grader.collect import collect
from grader.course import Course
from grader.report import build, write
from asroot.grading.runner import Context, grade_all
from asroot.grading.sandbox import CONTROL

from gradingutil import HOSTILE, leftovers

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ONE = HOSTILE  # alice's lab 1 is honest


def _subs(tmp: Path) -> Path:
    d = tmp / "subs" / "alice" / "lab1"
    d.mkdir(parents=True)
    (d / "lab1.ipynb").write_bytes((ONE / "alice" / "lab1" / "lab1.ipynb").read_bytes())
    return tmp / "subs"


def test_a_crashed_grader_is_swept(tmp_path: Path) -> None:
    ensure_pool(1)
    subs = _subs(tmp_path)
    grader = subprocess.Popen([sys.executable, "-m", "asroot.grading.autograde", "--course", str(tmp_path / "course"),
                               "autograde", str(subs), "--jobs", "1", "--cell-timeout", "30"],
                              cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # until the submission's engine and kernel are up
            cmds = [Path(f"/proc/{p}/cmdline").read_bytes() for p in account_pids(pwd.getpwnam("dlgrade1").pw_uid)
                    if Path(f"/proc/{p}").exists()]
            if any(b"ipykernel" in c for c in cmds):
                break
            assert grader.poll() is None, "the grader ended before the sandbox was up"
            time.sleep(0.5)
        else:
            pytest.fail("the sandbox never came up")
    finally:
        os.killpg(grader.pid, signal.SIGKILL)  # the crash: the grader dies, its sandbox does not
        grader.wait()
    left = leftovers("dlgrade1")
    assert left["procs"] and left["mounts"] and left["cgroups"] and left["helpers"], left
    sweep(["dlgrade1"])
    assert leftovers("dlgrade1") == {"procs": [], "mounts": False, "cgroups": [], "helpers": []}
    assert not list(CONTROL.glob("dlgrade1/*")) and not list((BASE / "dlgrade1").iterdir())


def test_an_engine_that_cannot_start_is_not_graded(tmp_path: Path) -> None:
    accounts = [pw.pw_name for pw in ensure_pool(1)]
    good = engine_binaries()
    broken = EngineBinaries(root=str(tmp_path / "no-engine"), version=good.version, source="", packages={})
    course = Course(tmp_path / "course")
    course.generate(("lab1",))
    subs, _ = collect(_subs(tmp_path))
    course.add_students({"alice"})
    course.make_templates({"lab1"})
    ctx = Context(course, load_state().mirror, broken, cell_timeout=30, submission_timeout=120)
    [outcome] = grade_all(ctx, subs, accounts, jobs=1)
    assert "engine" in outcome.not_graded and "did not start" in outcome.not_graded, outcome.not_graded
    reports = build(course, [outcome], [], 30)
    _, txt = write(reports, tmp_path / "out")
    assert "not graded" in txt.read_text() or "未评分" in txt.read_text()
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, "dockerlab") as gb:
        grades = [gb.find_grade(c.name, "lab1", "lab1", "alice") for c in gb.find_notebook("lab1", "lab1").grade_cells]
        assert grades and all(g.auto_score is None for g in grades), "a fault must not be recorded as 0"
    csv_path = course.export(tmp_path / "out" / "grades.csv")
    mark_not_graded(csv_path, reports)
    with open(csv_path, newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == "alice" and r["assignment"] == "lab1")
    assert row["score"] == "" and "engine" in row["note"]
    assert leftovers(accounts[0])["procs"] == []


@pytest.mark.timeout(180)  # the regression is a hang: it fails here, it does not stall the suite
def test_a_submission_whose_turn_never_comes_is_not_graded_and_the_batch_ends(tmp_path: Path) -> None:
    """Two at a time, staggered: the second waits for the first's engine, but only for its own time."""
    accounts = [pw.pw_name for pw in ensure_pool(1)]
    course = Course(tmp_path / "course")
    course.generate(("lab1",))
    subs, _ = collect(_subs(tmp_path))
    course.add_students({"alice"})
    course.make_templates({"lab1"})
    ctx = Context(course, load_state().mirror, engine_binaries(), cell_timeout=30, submission_timeout=3,
                  stagger=True)
    assert ctx.start_gate.acquire()  # another sandbox's engine that never answers
    try:
        [outcome] = grade_all(ctx, subs, accounts, jobs=1)
    finally:
        ctx.start_gate.release()
    assert outcome.not_graded and "3" in outcome.not_graded, outcome.not_graded
    assert "gate_passed" not in outcome.detail
    assert leftovers(accounts[0]) == {"procs": [], "mounts": False, "cgroups": [], "helpers": []}


@pytest.mark.timeout(60)
def test_the_sandbox_waits_for_its_holder_only_so_long() -> None:
    from asroot.grading.sandbox import _first_line

    quiet = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE)
    talks = subprocess.Popen(["sh", "-c", "printf 'ready\\nmore'; sleep 60"], stdout=subprocess.PIPE)
    try:
        assert quiet.stdout and talks.stdout
        assert _first_line(quiet.stdout.fileno(), 0.5) == b""
        assert quiet.poll() is None  # it returned while the holder still said nothing
        assert _first_line(talks.stdout.fileno(), 30) == b"ready"
    finally:
        for p in (quiet, talks):
            p.kill()
            p.wait()
