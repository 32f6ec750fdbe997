"""``compare()``: boot VMs and start containers side by side, measure, and always clean up.

>>> from kernel_ext.vmcompare import compare       # doctest: +SKIP
>>> c = compare(lab, runs=3, density=4)             # doctest: +SKIP
>>> print(c)                                        # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcore.proc import mem_available_kib
from labcore.state import paths

from ..errors import LabError
from ..messages import t
from . import qemu
from .accel import probe_accel
from .assets import VMAssets, build_assets, compile_bench
from .container import ContainerSide, resolve_client
from .density import density_containers, density_vms
from .results import Comparison, Side

__all__ = ["Progress", "compare", "default_cache_dir", "default_progress", "run_native"]

# Set by the IPython extension to a factory of live views; the API itself never imports widgets.
default_progress: list[Callable[[], Callable[[Progress], None]] | None] = [None]


@dataclass(frozen=True)
class Progress:
    """One step of a running comparison, with the snapshot measured so far."""

    step: int
    total: int
    key: str
    kwargs: tuple[tuple[str, Any], ...]
    snapshot: Comparison

    def text(self, lang: str | None = None) -> str:
        return t(self.key, lang=lang or self.snapshot.lang, **dict(self.kwargs))


def default_cache_dir() -> Path:
    """``$LAB_HOME/vm`` (the lab's home as :mod:`labcore.state` defines it)."""
    return paths().home / "vm"


def _mem_available_mib() -> float:
    return mem_available_kib() / 1024


def run_native(bench: Path, rounds: int, reps: int = 5) -> float | None:
    """The benchmark run directly on the host; its own nanosecond count (best of ``reps``)."""
    try:
        r = subprocess.run([str(bench), str(rounds), str(reps)], capture_output=True, text=True,
                           timeout=60, check=False)
    except OSError:  # not this machine's (an arm64 image on a volume an amd64 one prepared)
        return None
    m = re.search(r"ns=(\d+)", r.stdout)
    return float(m.group(1)) if m else None


def _paired(c: Comparison, side: Side, bench: Path, rounds: int,
            there: Callable[[], float | None]) -> None:
    """A native run, then the same benchmark on ``side``; records both and their ratio."""
    native, other = run_native(bench, rounds), there()
    c.native_bench_ns.add(native)
    side.bench_ns.add(other)
    if native and other:
        side.bench_ratio.add(other / native)


class _Run:
    """State of one comparison run: the snapshot, the progress sink, what must be cleaned up."""

    def __init__(self, c: Comparison, progress: Callable[[Progress], None] | None, total: int) -> None:
        self.c, self.progress, self.total, self.step = c, progress, total, 0
        self.vms: list[qemu.VM] = []
        self.side: ContainerSide | None = None
        self.t0 = time.monotonic()

    def emit(self, key: str, **kwargs: Any) -> None:
        self.step = min(self.step + 1, self.total)
        self.c.elapsed_s = time.monotonic() - self.t0
        if self.progress:
            self.progress(Progress(self.step, self.total, key, tuple(kwargs.items()), self.c))

    def stop_vms(self) -> None:
        for vm in self.vms:
            vm.send("off")  # all at once, so they power off in parallel
        for vm in self.vms:
            vm.stop(grace=3.0)
        self.vms.clear()


def _vm_runs(r: _Run, assets: VMAssets, accel: str, timeout: float, rounds: int, mem_mib: int) -> None:
    c = r.c
    for i in range(c.runs):
        r.emit("vm.p.vm", i=i + 1, n=c.runs)
        try:
            vm = qemu.boot(assets, accel=accel, machine=c.machine, timeout=timeout, mem_mib=mem_mib)
        except LabError as e:
            c.note(e.key, **e.kwargs)
            if e.key == "vm.boot_failed" and c.machine == "microvm":
                c.machine = "q35"  # microvm is the fast path; q35 is the machine every qemu has
            continue
        r.vms.append(vm)
        try:
            c.vm.start_s.add(vm.ready_s)
            rss, pss = vm.memory_kib()
            c.vm.mem_mib.add(pss / 1024)
            c.vm.part("qemu_rss").add(rss / 1024)
            c.vm.part("qemu_pss").add(pss / 1024)
            c.vm.kernel, c.vm.markers = vm.guest_kernel, [*c.vm.markers, vm.marker]
            if assets.bench:
                _paired(c, c.vm, assets.bench, rounds, functools.partial(vm.bench, rounds, timeout))
        finally:
            r.stop_vms()


def _container_runs(r: _Run, side: ContainerSide, bench: Path | None, rounds: int) -> None:
    c = r.c
    for i in range(c.runs):
        r.emit("vm.p.ct", i=i + 1, n=c.runs)
        try:
            rc = side.start(bench=bench)
        except LabError as e:
            c.note(e.key, **e.kwargs)
            continue
        try:
            c.container.start_s.add(rc.ready_s)
            mem = side.memory_kib(rc)
            c.container.mem_mib.add((mem["cgroup"] + mem["shim_pss"]) / 1024)
            for k, v in mem.items():
                c.container.part(k).add(v / 1024)
            c.container.kernel = rc.field("kernel")
            c.container.markers.append(rc.marker)
            if bench:
                _paired(c, c.container, bench, rounds, functools.partial(side.bench, rc, rounds))
        finally:
            side.remove(rc.container)


def compare(lab_or_client: Any = None, runs: int = 3, density: int = 4,
            progress: Callable[[Progress], None] | None = None, lang: str | None = None, *,
            cache_dir: str | Path | None = None, budget_mib: float | None = None,
            boot_timeout: float | None = None, bench_rounds: int = 10, image: str = "busybox",
            mem_mib: int = 128) -> Comparison:
    """Measure a container against a virtual machine on this host; returns a :class:`Comparison`.

    ``lab_or_client`` is a ``docker.DockerClient`` or anything with ``.client`` (a ``Lab``);
    ``None`` skips the container side. Faults become notes; what could be measured is reported.
    """
    if not (1 <= runs <= 20 and 0 <= density <= 32):
        raise LabError("vm.bad_args")
    if progress is None and default_progress[0] is not None:
        progress = default_progress[0]()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    c = Comparison(runs=runs, lang=lang, bench_rounds=bench_rounds)
    c.host_available_mib = _mem_available_mib()
    c.budget_mib = budget_mib if budget_mib is not None else c.host_available_mib / 2
    r = _Run(c, progress, total=5 + 2 * runs + (2 if density else 0))
    try:
        _measure(r, lab_or_client, cache, density, boot_timeout, bench_rounds, image, mem_mib)
    finally:
        r.emit("vm.p.cleanup")
        r.stop_vms()
        if r.side is not None:
            r.side.remove_all()
        c.elapsed_s = time.monotonic() - r.t0
        c.finished = True
        r.emit("vm.p.done", seconds=f"{c.elapsed_s:.1f}")
    return c


def _measure(r: _Run, target: Any, cache: Path, density: int, boot_timeout: float | None,
             rounds: int, image: str, mem_mib: int) -> None:
    c = r.c
    r.emit("vm.p.assets")
    assets: VMAssets | None = None
    have_qemu = True
    if os.environ.get("LAB_NO_VM"):  # a course image without the VM part (courseimage: only amd64 carries one)
        c.note("vm.not_in_image", machine=platform.machine())
        have_qemu = False
        bench = compile_bench(cache)[0]
    else:
        try:
            qemu.find_qemu()
        except LabError as e:
            c.note(e.key, **e.kwargs)
            have_qemu = False
        try:
            assets = build_assets(cache, log=None)
            bench = assets.bench
        except LabError as e:
            c.note(e.key, **e.kwargs)
            bench = compile_bench(cache)[0]  # the CPU test needs no kernel
        if bench is None:
            c.note("vm.cc_missing")
    c.bench_rounds = rounds

    r.emit("vm.p.native")
    for _ in range(c.runs if bench else 0):
        c.native_bench_ns.add(run_native(bench, rounds))  # type: ignore[arg-type]

    r.emit("vm.p.probe")
    timeout = boot_timeout or 15.0
    if assets is not None and have_qemu:
        probe = probe_accel(assets, cache)
        c.accel, c.machine = probe.accel, qemu.pick_machine(qemu.find_qemu())
        if probe.note_key:
            c.note(probe.note_key, **probe.note_kwargs)
        c.vm.disk_bytes = assets.disk_bytes
        timeout = boot_timeout or (6.0 if c.accel == "kvm" else 15.0)
        _vm_runs(r, assets, c.accel, timeout, rounds, mem_mib)
    else:
        r.step += c.runs

    side = _container_side(r, target, image)
    if side is not None:
        _container_runs(r, side, bench, rounds)
    else:
        r.step += c.runs

    if density:
        r.emit("vm.p.density_ct", n=density)
        if side is not None:
            density_containers(c, side, density)
        r.emit("vm.p.density_vm", n=density)
        if assets is not None and have_qemu and c.vm.start_s:
            try:
                density_vms(c, assets, c.accel, density, timeout, mem_mib, r.vms)
            finally:
                r.stop_vms()


def _container_side(r: _Run, target: Any, image: str) -> ContainerSide | None:
    if target is None:
        return None
    try:
        client, session = resolve_client(target)
        side = ContainerSide(client, session, image=image)
        r.side, r.c.session = side, session
        r.c.container.disk_bytes = side.ensure_image()
        r.c.host_kernel = side.host_kernel()
        return side
    except LabError as e:
        r.c.note("vm.engine_missing", detail=str(e))
        return None
