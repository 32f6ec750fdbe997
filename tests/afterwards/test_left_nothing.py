"""After root's ``./lab test`` brought both labs down: nothing of the lab is left on the host
(processes, mounts, network links, cgroups, ip_forward as it was). ``LAB_BEFORE`` is
``labctl.hostcheck.snapshot()`` taken before anything started."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from labctl import cgroups, hostcheck

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def before() -> dict[str, object]:
    raw = os.environ.get("LAB_BEFORE")
    if not raw:
        pytest.fail("run by root's ./lab test, which records the host first (LAB_BEFORE)")
    return dict(json.loads(raw))


def test_no_process_of_the_lab_is_left() -> None:
    uid = pwd.getpwnam(os.environ.get("LAB_ACCOUNT", "dockerlab")).pw_uid
    left = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and d.stat().st_uid == uid:
                left.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            continue
    assert not [c for c in left if c], left


def test_host_network_and_mounts_are_as_they_were(before: dict[str, object]) -> None:
    now = json.loads(hostcheck.snapshot())
    assert now["ip_forward"] == before["ip_forward"]
    assert set(now["links"]) <= set(before["links"]), set(now["links"]) - set(before["links"])  # type: ignore[arg-type]
    assert now["mounts"] <= before["mounts"]


def test_no_engine_cgroup_is_left() -> None:
    user = os.environ.get("LAB_ACCOUNT", "dockerlab")
    for base in cgroups._bases(user):
        if base.is_dir():
            engines = [d.name for d in base.iterdir() if d.is_dir() and d.name.startswith("lab-")]
            assert not engines, engines
