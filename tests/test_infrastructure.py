"""One infrastructure layer: one registry client (labcore.distribution), one reader of the lab's
state (labcore.state), one set of /proc readers (labcore.proc), used by labctl and kernel_ext alike."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from labcore import distribution, proc
from labcore.state import REPO

SOURCES = sorted(p for pkg in ("labcore", "labengine", "kernel_ext", "labs", "labctl", "classroom", "grader", "asroot")
                 for p in (REPO / pkg).rglob("*.py"))


def _files_mentioning(pattern: str) -> set[str]:
    rx = re.compile(pattern)
    return {str(p.relative_to(REPO)) for p in SOURCES if rx.search(p.read_text())}


def test_one_accept_list_for_manifests() -> None:
    assert _files_mentioning(r"vnd\.(docker\.distribution|oci\.image)\.") == {"labcore/distribution.py"}
    for media in (distribution.DOCKER_MANIFEST, distribution.OCI_MANIFEST, distribution.DOCKER_INDEX,
                  distribution.OCI_INDEX):
        assert media in distribution.MANIFEST_TYPES


def test_one_reader_of_the_lab_state() -> None:
    assert _files_mentioning(r"state\.json") == {"labcore/state.py"}


def test_one_place_reads_process_memory_and_scans_proc() -> None:
    assert _files_mentioning(r"smaps_rollup|/proc/meminfo") == {"labcore/proc.py"}
    scans = _files_mentioning(r"""(?:Path\(\s*["']/proc["']\)\.iterdir|listdir\(\s*["']/proc["'])""")
    assert scans <= {"labcore/proc.py", "asroot/gradeaccounts.py"}  # gradeaccounts: its own uid scan, for now


def test_proc_readers_on_this_process() -> None:
    rss, pss = proc.memory_kib(os.getpid())
    assert rss >= pss > 0
    assert os.getpid() in set(proc.pids())
    assert proc.parent_and_state(os.getpid())[0] == os.getppid()
    assert proc.cmdline(os.getpid())[0].endswith(b"python") or b"python" in proc.cmdline(os.getpid())[0]
    assert proc.mem_available_kib() > 0


def test_an_address_where_nothing_listens_is_unreachable() -> None:
    with pytest.raises(distribution.Unreachable):
        distribution.tags("127.0.0.1:1", "library/busybox")
    with pytest.raises(distribution.Unreachable):
        distribution.tags(f"unix://{Path('/nonexistent/registry.sock')}", "library/busybox")


@pytest.mark.engine
def test_the_client_against_the_lab_registries(state) -> None:  # type: ignore[no-untyped-def]
    from kernel_ext import registry
    from labctl.images import CONTENT_LABEL, registry_label

    up = state.upstream
    assert "latest" in distribution.tags(up, "library/busybox")
    digest = distribution.manifest_digest(up, "library/busybox", "latest")
    assert digest.startswith("sha256:") and distribution.manifest_digest(up, "library/busybox", digest) == digest
    assert registry.manifest_digest("busybox", "latest") == digest  # kernel_ext: the same client, lab defaults
    config = distribution.image_config(up, "library/busybox", "latest")
    label = config["config"]["Labels"][CONTENT_LABEL]
    assert registry_label(up, "library/busybox", "latest") == label
    if state.images:  # a lab that built its images records their labels (the tests' lab copies them instead)
        assert label == state.images["library/busybox:latest"]
    assert distribution.image_layers(up, "library/busybox", "latest")
    with pytest.raises(distribution.NotFound):
        distribution.manifest_digest(up, "library/busybox", "no-such-tag")
    assert registry_label(up, "library/busybox", "no-such-tag") is None
