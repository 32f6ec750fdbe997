"""kernel_ext.vmcompare: real VM boots (TCG is fine) and real containers, their markers, and cleanup.

VM tests boot qemu with the Debian cloud kernel (``slow``); engine tests also need the lab engine.
Every test checks that no qemu process and no labelled container is left behind.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel_ext.connection import SESSION_LABEL
from kernel_ext.errors import LabError, VMError
from kernel_ext.vmcompare import (
    Comparison,
    LiveProgress,
    Progress,
    TextProgress,
    VMAssets,
    build_assets,
    compare,
    comparison_figure,
    default_cache_dir,
    measure,
    qemu,
)
from kernel_ext.vmcompare import assets as assets_mod
from kernel_ext.vmcompare.accel import probe_accel
from kernel_ext.vmcompare.container import ContainerSide
from kernel_ext.vmcompare.results import Series
from kernel_ext.vmcompare.table import render_html, render_text, rows

needs_qemu = pytest.mark.skipif(shutil.which(qemu.QEMU) is None, reason="qemu-system-x86 not installed")


def _keys(c: Comparison) -> list[str]:
    return [n.key for n in c.notes]


def _no_leftovers(client: Any = None, session: str = "") -> None:
    """No qemu child of this process, and no container of this session (others may share the host)."""
    assert qemu.qemu_processes() == [], "a qemu process was left running"
    assert qemu.live_vms() == []
    if client is not None:
        assert session
        left = client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session}"})
        assert left == [], f"containers left behind: {left}"


@pytest.fixture(scope="module")
def assets() -> VMAssets:
    return build_assets(default_cache_dir(), log=None)


@pytest.fixture(autouse=True)
def _guard() -> Iterator[None]:
    yield
    qemu.stop_all()  # a failing test must not leave guests for the next one


# -- pure parts -------------------------------------------------------------------------------

def test_cpio_is_newc_and_lists_init() -> None:
    data = assets_mod._cpio([("init", 0o100755, b"#!/bin/sh\n"), ("bin", 0o040755, b"")])
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert b"init\0" in data and b"TRAILER!!!\0" in data


def test_static_elf_detection() -> None:
    assert assets_mod._is_static_elf(assets_mod._static_busybox())
    assert not assets_mod._is_static_elf(Path("/bin/sh").resolve().read_bytes())


def test_series_and_table_render_both_languages() -> None:
    c = Comparison(runs=3, accel="tcg", machine="microvm", finished=True, host_available_mib=22626)
    for v in (0.26, 0.26, 0.30):  # figures from a run on the lab machine (TCG, 2 cores)
        c.container.start_s.add(v)
    for v in (2.53, 2.66, 2.81):
        c.vm.start_s.add(v)
    c.container.mem_mib.add(12.4)
    c.vm.mem_mib.add(203.0)
    c.container.disk_bytes, c.vm.disk_bytes = 1985512, 15234716
    c.vm.bench_ratio.add(4.05)
    c.container.bench_ratio.add(1.02)
    c.note("vm.kvm_broken", seconds="4", detail="hang")
    assert c.start_ratio() == pytest.approx(2.66 / 0.26)
    assert Series().median is None
    for lang in ("zh", "en"):
        c.lang = lang
        text = render_text(c)
        assert ("秒级" in text and "分钟级" in text) if lang == "zh" else ("minutes" in text)
        assert "2.66 s (2.53–2.81)" in text and "4.05" in text and "Firecracker" in text
        assert "<table>" in render_html(c)
        assert len(rows(c)) == 5
    bundle = c._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}


def test_bad_arguments_are_one_sentence() -> None:
    with pytest.raises(LabError) as e:
        compare(None, runs=0)
    assert e.value.key == "vm.bad_args"


# -- the VM -------------------------------------------------------------------------------------

def test_build_assets_is_cached_and_fast(assets: VMAssets, capsys: pytest.CaptureFixture[str]) -> None:
    stamps = {f: f.stat().st_mtime_ns for f in (assets.kernel, assets.initramfs)}
    again = build_assets(default_cache_dir())
    assert again == assets
    assert {f: f.stat().st_mtime_ns for f in (assets.kernel, assets.initramfs)} == stamps  # nothing rebuilt
    out = capsys.readouterr().out.strip().splitlines()
    assert 1 <= len(out) <= 2  # short progress lines only
    assert assets.kernel_version.endswith("-cloud-amd64")
    with gzip.open(assets.initramfs) as f:
        archive = f.read()
    assert b"bin/busybox\0" in archive and b"init\0" in archive and b"bench\0" in archive


@needs_qemu
@pytest.mark.slow
def test_vm_marker_comes_from_the_guest_kernel(assets: VMAssets) -> None:
    probe = probe_accel(assets, default_cache_dir())
    vm = qemu.boot(assets, accel=probe.accel, timeout=15)
    try:
        assert vm.ready_s is not None and vm.ready_s > 0
        assert f"id={vm.nonce}" in vm.marker  # the host's nonce, echoed by the guest's /init
        assert vm.guest_kernel == assets.kernel_version != os.uname().release
        assert vm.proc is not None
        cmdline = Path(f"/proc/{vm.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[cmdline.index(b"-accel") + 1].decode() == probe.accel
        # the guest agrees: a KVM guest detects the hypervisor, a TCG guest sees none
        assert vm.hypervisor == ("KVM" if probe.accel == "kvm" else "none")
        rss, pss = vm.memory_kib()
        assert rss > 64 * 1024 and pss > 0
        ns = vm.bench(5, timeout=30, reps=1)
        assert ns is not None and ns > 0
    finally:
        vm.stop()
    assert vm.proc.returncode == 0  # powered off from inside, not killed
    _no_leftovers()


@needs_qemu
@pytest.mark.slow
def test_kvm_probe_names_the_accelerator_and_leaves_nothing(assets: VMAssets) -> None:
    probe = probe_accel(assets, cache_dir=None)  # no memo: really boots when /dev/kvm exists
    if not (Path("/dev/kvm").exists() and os.access("/dev/kvm", os.R_OK | os.W_OK)):
        assert (probe.accel, probe.note_key) == ("tcg", "vm.kvm_absent")
    elif probe.accel == "tcg":
        assert probe.note_key == "vm.kvm_broken"
    _no_leftovers()


@needs_qemu
@pytest.mark.slow
def test_boot_timeout_retries_once_then_kills(assets: VMAssets) -> None:
    with pytest.raises(VMError) as e:
        qemu.boot(assets, timeout=0.3, retries=1)
    assert e.value.key == "vm.boot_timeout" and e.value.kwargs["n"] == 2
    _no_leftovers()


@needs_qemu
@pytest.mark.slow
def test_the_retry_after_a_killed_boot_really_boots(assets: VMAssets) -> None:
    vm = qemu.VM(assets)
    vm.start()
    vm.kill()  # as after a timeout; the old console reader must not disturb the new boot
    vm.start()
    try:
        assert vm.wait_ready(30) and vm.attempts == 2
    finally:
        vm.stop()
    _no_leftovers()


@needs_qemu
@pytest.mark.slow
def test_too_little_memory_for_k_vms(tmp_path: Path) -> None:
    c = compare(None, runs=1, density=3, budget_mib=300, cache_dir=default_cache_dir())
    assert "vm.memory_short" in _keys(c)
    assert c.density_vm.tried == 1 and c.density_vm.ready == 1
    assert c.vm.start_s and c.finished
    _no_leftovers()


def test_qemu_missing_still_reports_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu, "QEMU", "qemu-system-does-not-exist")
    c = compare(None, runs=1, density=2, cache_dir=default_cache_dir())
    assert "vm.qemu_missing" in _keys(c)
    assert not c.vm.start_s and c.native_bench_ns  # the native benchmark still ran
    assert "qemu-system-x86" in render_text(c)
    _no_leftovers()


def test_kernel_not_downloadable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(VMError) as e:
        build_assets(tmp_path, package="linux-image-no-such-package", log=None)
    assert e.value.key == "vm.kernel_download" and "apt-get update" in str(e.value)
    monkeypatch.setattr(measure, "build_assets",
                        functools.partial(build_assets, package="linux-image-no-such-package"))
    c = compare(None, runs=1, density=0, cache_dir=tmp_path)
    assert "vm.kernel_download" in _keys(c) and c.native_bench_ns and not c.vm.start_s
    _no_leftovers()


# -- with the engine ----------------------------------------------------------------------------

@pytest.mark.engine
def test_container_marker_comes_from_inside(client: Any, assets: VMAssets, unique: str) -> None:
    side = ContainerSide(client, session=f"test-{unique}")
    assert side.ensure_image() > 0
    try:
        rc = side.start(bench=assets.bench)
        rc.container.reload()
        assert rc.field("host") == rc.container.id[:12]  # the container's own hostname
        assert rc.field("kernel") == client.info()["KernelVersion"]  # shares the host's kernel
        assert rc.container.labels[SESSION_LABEL] == f"test-{unique}"
        mem = side.memory_kib(rc)
        assert mem["cgroup"] > 0
        assert side.bench(rc, 2, reps=1)
    finally:
        side.remove_all()
    _no_leftovers(client, side.session)


@needs_qemu
@pytest.mark.engine
@pytest.mark.slow
def test_compare_default_size_reports_every_measure(lab: Any) -> None:
    # Its wall time (goal: < 60 s) is measured by bench/bench_vm_vs_container.py, not asserted here.
    events: list[Progress] = []
    c = compare(lab, progress=events.append, lang="en")
    assert c.finished and events[-1].step == events[-1].total
    assert len(c.vm.start_s.values) == 3 and len(c.container.start_s.values) == 3
    assert c.vm.start_s.median > c.container.start_s.median  # type: ignore[operator]
    assert c.accel == probe_accel(build_assets(default_cache_dir(), log=None), default_cache_dir()).accel
    assert all(f"kernel={c.vm.kernel}" in m for m in c.vm.markers)
    assert c.vm.kernel != c.container.kernel == c.host_kernel
    assert c.density_ct.ready == 4 and c.density_vm.ready == 4
    assert c.ratio(c.vm) and c.ratio(c.container)
    text = render_text(c)
    assert "Start-up" in text and "near native" in text and "TCG" in text.upper()
    fig = comparison_figure(c)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
    assert c.session == lab.session
    _no_leftovers(lab.client, lab.session)


@needs_qemu
@pytest.mark.engine
@pytest.mark.slow
def test_forced_timeout_reports_containers_and_cleans_up(client: Any) -> None:
    c = compare(client, runs=1, density=2, boot_timeout=0.3)
    assert "vm.boot_timeout" in _keys(c)
    assert not c.vm.start_s and c.container.start_s and c.density_ct.ready == 2
    _no_leftovers(client, c.session)


def test_progress_views_follow_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu, "QEMU", "qemu-system-does-not-exist")  # quick: native side only
    live, text = LiveProgress(auto_display=False), TextProgress(stream=io.StringIO())

    def both(p: Progress) -> None:
        live(p)
        text(p)

    compare(None, runs=1, density=0, progress=both, cache_dir=default_cache_dir())
    assert live.last is not None and live.last.snapshot.finished
    if live.box is not None:
        assert live.bar.value == live.bar.max and "<table>" in live.table.value
    assert text.lines[0].startswith("[1/") and text.lines[-1].startswith(f"[{live.last.total}/")
