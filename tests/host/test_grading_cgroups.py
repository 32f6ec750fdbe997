"""The grading sandbox's cgroup code on both hierarchies, against a directory laid out like each.

This machine is cgroup v1, so the v2 path only runs here against a plain directory tree: it proves
which knobs are written, with which values, and what is handed to the account; tests/vm's VM grades
two submissions on cgroup v2 and reads the same knobs from a live sandbox. The v1 knobs are also
written into this host's real hierarchy and read back.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from labengine.cgroups import hierarchy
from asroot.grading.sandbox import CGROUP_ROOT, Limits, SandboxCgroup, _root_device


def _account() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def test_v2_limits_and_delegation(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    cg = SandboxCgroup("dockerlab-grade-x", root=tmp_path)
    assert cg.kind == "v2"
    pw = _account()
    cg.create(Limits(pids=321, memory_mb=700, cpus=0.5, container_pids=50, container_memory_mb=300),
              pw.pw_uid, pw.pw_gid)
    top = tmp_path / "dockerlab-grade-x"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids +cpu +io"
    assert (top / "memory.max").read_text() == str(700 << 20)
    assert (top / "memory.swap.max").read_text() == "0"
    assert (top / "pids.max").read_text() == "321"
    assert (top / "cpu.max").read_text() == "50000 100000"
    assert "rbps=" in (top / "io.max").read_text() and "wbps=" in (top / "io.max").read_text()
    assert (top / "ctr" / "pids.max").read_text() == "50"
    assert (top / "ctr" / "memory.max").read_text() == str(300 << 20)
    assert cg.procs_files() == [top / "work" / "cgroup.procs"]
    for d in (top, top / "work", top / "ctr"):
        assert os.stat(d).st_uid == pw.pw_uid
    assert os.stat(top / "cgroup.subtree_control").st_uid == pw.pw_uid  # (procs/threads: made by the kernel)
    for knob in ("memory.max", "pids.max", "cpu.max", "memory.swap.max"):
        assert os.stat(top / knob).st_uid == 0, f"{knob} must stay root's"
    assert cg.container_parent() == "/dockerlab-grade-x/ctr"


def test_v1_limits_and_only_ctr_is_the_accounts(tmp_path: Path) -> None:
    controllers = ("pids", "memory", "cpu", "freezer", "blkio")
    for c in controllers:
        (tmp_path / c).mkdir()
    cg = SandboxCgroup("dockerlab-grade-y", root=tmp_path)
    assert cg.kind == "v1"
    pw = _account()
    cg.create(Limits(pids=99, memory_mb=512, io_mbps=50), pw.pw_uid, pw.pw_gid)
    assert (tmp_path / "pids" / "dockerlab-grade-y" / "pids.max").read_text() == "99"
    assert (tmp_path / "memory" / "dockerlab-grade-y" / "memory.limit_in_bytes").read_text() == str(512 << 20)
    assert (tmp_path / "memory" / "dockerlab-grade-y" / "memory.memsw.limit_in_bytes").read_text() == str(512 << 20)
    assert (tmp_path / "cpu" / "dockerlab-grade-y" / "cpu.cfs_quota_us").read_text() == "100000"
    dev = _root_device()
    assert dev, "this machine's / is on a disk: the I/O limit has one to apply to"
    for knob in ("read", "write"):
        assert (tmp_path / "blkio" / "dockerlab-grade-y" / f"blkio.throttle.{knob}_bps_device").read_text() == \
            f"{dev} {50 << 20}"
    for c in controllers:
        assert os.stat(tmp_path / c / "dockerlab-grade-y").st_uid == 0
        assert os.stat(tmp_path / c / "dockerlab-grade-y" / "ctr").st_uid == pw.pw_uid
    assert len(cg.procs_files()) == len(controllers)


def test_the_io_limit_names_the_whole_disk_or_nothing() -> None:
    dev = _root_device("/")
    assert Path(f"/sys/dev/block/{dev}").exists() and not Path(f"/sys/dev/block/{dev}/partition").exists()
    assert _root_device("/proc") == ""  # not on a block device: no I/O limit rather than a wrong one
    assert _root_device("/no/such/path") == ""


@pytest.mark.skipif(hierarchy() != "v1", reason="the live v1 knobs; v2's are read in tests/vm's VM")
def test_this_hosts_kernel_takes_every_v1_limit() -> None:
    """The same values written into the host's real cgroup v1 hierarchy, read back from the kernel."""
    cg = SandboxCgroup(f"dockerlab-grade-knobtest{os.getpid()}")
    pw = _account()
    limits = Limits(pids=77, memory_mb=300, cpus=0.5, io_mbps=40)
    try:
        cg.create(limits, pw.pw_uid, pw.pw_gid)
        top = {c: CGROUP_ROOT / c / cg.name for c in ("pids", "memory", "cpu", "blkio")}
        assert (top["pids"] / "pids.max").read_text().strip() == "77"
        assert (top["memory"] / "memory.limit_in_bytes").read_text().strip() == str(300 << 20)
        assert (top["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        dev = _root_device()
        for knob in ("read", "write"):
            assert (top["blkio"] / f"blkio.throttle.{knob}_bps_device").read_text().split() == [dev, str(40 << 20)]
    finally:
        cg.remove()
    assert not any(t.exists() for t in cg.tops())
