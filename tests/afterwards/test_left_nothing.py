"""After root's ``./lab test`` brought both labs down: nothing of the lab is left on the host
(processes, mounts, network links, cgroups, ip_forward as it was). ``LAB_BEFORE`` is
``tests.support.hostcheck.snapshot()`` taken before anything started."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
from collections import Counter
from pathlib import Path

import pytest

from labengine import cgroups
from tests.support import hostcheck

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def before() -> dict[str, object]:
    raw = os.environ.get("LAB_BEFORE")
    if not raw:
        pytest.fail("run by root's ./lab test, which records the host first (LAB_BEFORE)")
    return dict(json.loads(raw))


def _markers() -> list[str]:
    """The two labs' homes and private run directories, as their processes name them."""
    uid = pwd.getpwnam(os.environ.get("LAB_ACCOUNT", "dockerlab")).pw_uid
    homes = [os.environ[k] for k in ("LAB_MAIN_HOME", "LAB_TEST_HOME") if os.environ.get(k)]
    assert homes, "root's ./lab test passes LAB_MAIN_HOME and LAB_TEST_HOME"
    tags = [hashlib.sha256(str(Path(h).resolve()).encode()).hexdigest()[:6] for h in homes]
    return homes + [f"/tmp/dockerlab-{uid}-{t}" for t in tags]


def test_no_process_of_the_lab_is_left() -> None:
    """Matched by command line and environment (a container's `runc init` names its engine only there)."""
    markers = _markers()
    uid = pwd.getpwnam(os.environ.get("LAB_ACCOUNT", "dockerlab")).pw_uid
    left = []
    for d in Path("/proc").iterdir():
        try:
            if not d.name.isdigit() or d.stat().st_uid != uid:
                continue
            text = ((d / "cmdline").read_bytes()
                    + (d / "environ").read_bytes()).replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in text for m in markers):
            left.append(text[:160])
    assert not left, left


def test_host_network_and_mounts_are_as_they_were(before: dict[str, object]) -> None:
    now = json.loads(hostcheck.snapshot())
    assert now["ip_forward"] == before["ip_forward"]
    assert set(now["links"]) <= set(before["links"]), set(now["links"]) - set(before["links"])  # type: ignore[arg-type]
    added = Counter(now["mounts"]) - Counter(before["mounts"])  # type: ignore[arg-type]
    assert set(added) <= hostcheck.OWN_MOUNTS, sorted(added)
    assert not [m for m in now["mounts"] if m.startswith("/run/netns/")  # type: ignore[union-attr]
                and m not in before["mounts"]], "a classroom's network namespace is left"  # type: ignore[operator]


def test_nothing_of_the_course_is_left_in_tmp(before: dict[str, object]) -> None:
    """The labs' runtime directories (``./lab down`` removes them), the suite's scratch directory (where the
    chapters and tests made theirs), the image builder's: none is new."""
    added = sorted(set(hostcheck.tmp_entries()) - set(before["tmp"]))  # type: ignore[arg-type]
    assert not added, added


def test_no_engine_cgroup_is_left() -> None:
    user = os.environ.get("LAB_ACCOUNT", "dockerlab")
    ours = {f"lab-{m.rpartition('-')[2]}" for m in _markers() if m.startswith("/tmp/dockerlab-")}
    for base in cgroups.bases(user):
        if base.is_dir():
            engines = [d.name for d in base.iterdir() if d.is_dir() and d.name in ours]
            assert not engines, engines
