"""What the grading tests share: grading a folder of submissions with ``./lab grade all`` and reading
its report, and what a finished (or crashed) run must not leave on the host."""

from __future__ import annotations

import os
import pwd
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asroot.gradeaccounts import BASE, POOL_MAX, account_pids, pool_names
from asroot.grading.autograde import main
from asroot.grading.sandbox import CGROUP_ROOT, CONTROL

__all__ = ["HOSTILE", "SAMPLES", "Batch", "assert_nothing_left", "grade", "helper_processes", "leftovers",
           "select"]

SUBMISSIONS = Path(__file__).parents[1] / "labs_submissions"
SAMPLES = SUBMISSIONS / "submitted"  # written by tests/labs_submissions/make_samples.py
HOSTILE = SUBMISSIONS / "hostile"


@dataclass
class Batch:
    rc: int
    course: Path
    out: Path
    took: float
    report: dict[tuple[str, str], dict[str, Any]]  # (student, lab) -> report.json's row


def select(src: Path, dest: Path, skip: set[tuple[str, str]]) -> Path:
    """A copy of the submissions folder ``src`` without the (student, lab folder) pairs in ``skip``."""
    for lab_dir in sorted(p for p in src.glob("*/*") if p.is_dir()):
        if (lab_dir.parent.name, lab_dir.name) not in skip:
            shutil.copytree(lab_dir, dest / lab_dir.parent.name / lab_dir.name)
    return dest


def grade(tmp: Path, submissions: Path, *options: str) -> Batch:
    """``./lab grade all`` (in this process, as root) into a new course under ``tmp``."""
    import json

    course, out = tmp / "course", tmp / "results"
    t0 = time.monotonic()
    rc = main(["--course", str(course), "all", str(submissions), "--jobs", "2", *options, "--out", str(out)])
    took = time.monotonic() - t0
    rows = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else []
    return Batch(rc, course, out, took, {(r["student"], r["lab"]): r for r in rows})


def helper_processes() -> list[str]:
    """Root's per-sandbox helpers still running (relay, check service, namespace holder)."""
    found = []
    for p in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "asroot.grading.relay" in cmd or "asroot.grading.checkd" in cmd or cmd.startswith("dockerlab-grade-holder"):
            found.append(cmd[:80])
    return found


def leftovers(account: str) -> dict[str, object]:
    """What one grading account's sandbox left: processes, its tmpfs mount, cgroups, root's helpers."""
    uid = pwd.getpwnam(account).pw_uid
    return {"procs": account_pids(uid), "mounts": str(BASE / account) in Path("/proc/mounts").read_text(),
            "cgroups": [str(p) for p in CGROUP_ROOT.glob(f"*/dockerlab-grade-{account}")]
            + [str(p) for p in CGROUP_ROOT.glob(f"dockerlab-grade-{account}")],
            "helpers": helper_processes()}


def assert_nothing_left(course: Path) -> None:
    """After a batch: no sandbox cgroup, mount, process, home content or grader file is left."""
    assert not list(CGROUP_ROOT.glob("*/dockerlab-grade-*")) and not list(CGROUP_ROOT.glob("dockerlab-grade-*"))
    mounts = Path("/proc/mounts").read_text()
    assert str(BASE) not in mounts and str(course) not in mounts
    for name in pool_names(POOL_MAX):
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
        assert not account_pids(uid), f"{name} still runs processes"
        assert not list((BASE / name).iterdir()), f"{name}'s home was not wiped"
    assert not helper_processes(), "root's sandbox helpers are still running"
    assert not list(CONTROL.glob("*/*")), "the grader's helpers left files"
