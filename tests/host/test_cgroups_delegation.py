"""asroot.cgroups.delegate: the lab's (and each class member's) cgroup, against directories laid
out like each hierarchy (tests/host/test_grading_cgroups.py does the same for a grading sandbox's;
both hand over through asroot.cgroups.hand_over). What the account gets is the delegation files, never a limit."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from asroot import cgroups as rootcg
from labengine import cgroups

LIMITS = cgroups.LabLimits(memory_mb=300, pids=77, cpu_weight=50)


def _touch(d: Path, *names: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / n).write_text("")


def test_v2_the_account_gets_the_subtree_and_root_keeps_the_limits(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    pw = pwd.getpwnam("nobody")
    base = tmp_path / cgroups.parent_name("nobody")
    for d in (base, base / "session"):  # as the kernel makes them with a directory
        _touch(d, *cgroups.DELEGATED_V2[1:], "memory.max", "pids.max")
    assert rootcg.delegate("nobody", LIMITS, root=tmp_path, systemd=False) == [base]
    assert (base / "memory.max").read_text() == str(300 << 20) and (base / "pids.max").read_text() == "77"
    assert (base / "memory.swap.max").read_text() == "0" and (base / "cpu.weight").read_text() == "50"
    assert (base / "cgroup.subtree_control").read_text() == "+memory +pids +cpu +io"
    for d in (base, base / "session"):
        for rel in cgroups.DELEGATED_V2:
            assert os.stat(d / rel).st_uid == pw.pw_uid, f"{d / rel} is not the account's"
        for knob in ("memory.max", "pids.max"):
            assert os.stat(d / knob).st_uid == 0, f"{d / knob} must stay root's"


def test_v1_the_account_gets_its_directories_and_root_keeps_the_limits(tmp_path: Path) -> None:
    pw = pwd.getpwnam("nobody")
    bases = [tmp_path / c / cgroups.parent_name("nobody") for c in cgroups.V1_CONTROLLERS]
    for b in bases:
        _touch(b, "cgroup.procs", "tasks")
    assert rootcg.delegate("nobody", LIMITS, root=tmp_path, systemd=False) == bases
    mem, pids, cpu = bases
    assert (mem / "memory.limit_in_bytes").read_text() == str(300 << 20)
    assert (pids / "pids.max").read_text() == "77" and (cpu / "cpu.shares").read_text() == str(50 * 1024 // 100)
    for b in bases:
        for rel in cgroups.DELEGATED_V1:
            assert os.stat(b / rel).st_uid == pw.pw_uid
    for knob in (mem / "memory.limit_in_bytes", pids / "pids.max", cpu / "cpu.shares"):
        assert os.stat(knob).st_uid == 0, f"{knob} must stay root's"
