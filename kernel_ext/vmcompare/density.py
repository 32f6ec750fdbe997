"""Density: start K containers, and as many of K VMs as the memory budget allows, all at once."""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import LabError
from . import qemu
from .assets import VMAssets
from .container import ContainerSide, RunningContainer
from .results import Comparison, Density

__all__ = ["density_containers", "density_vms"]


def density_containers(c: Comparison, side: ContainerSide, k: int) -> None:
    """Start ``k`` containers at once; record how many came up, how fast, and their memory."""
    d = c.density_ct = Density(want=k, tried=k)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(k, 8)) as pool:
        futures = [pool.submit(side.start) for _ in range(k)]
        ready: list[RunningContainer] = []
        for f in futures:
            try:
                ready.append(f.result())
            except LabError as e:
                c.note(e.key, **e.kwargs)
    d.seconds = time.monotonic() - t0 if ready else None
    d.ready = len(ready)
    total = 0.0
    for rc in ready:
        mem = side.memory_kib(rc)
        total += (mem["cgroup"] + mem["shim_pss"]) / 1024
    d.total_mib = total or None
    side.remove_all()


def density_vms(c: Comparison, assets: VMAssets, accel: str, k: int, timeout: float, mem_mib: int,
                started: list[qemu.VM]) -> None:
    """Boot up to ``k`` VMs at once within the memory budget. Every VM goes into ``started``;
    the caller stops them (also when this raises)."""
    each = c.vm.mem_mib.median or float(mem_mib + 96)
    fit = int(c.budget_mib // each)
    n = min(k, fit)
    d = c.density_vm = Density(want=k, tried=n)
    if n < k:
        c.note("vm.memory_short", budget=int(c.budget_mib), n=fit, each=int(each), want=k)
    if n <= 0:
        return
    # k guests share the host's cores: allow each the time it gets while the others boot too
    limit = timeout * math.ceil(n / max(1, os.cpu_count() or 1))
    t0 = time.monotonic()
    vms = [qemu.VM(assets, accel=accel, machine=c.machine, mem_mib=mem_mib) for _ in range(n)]
    for vm in vms:
        vm.start()
        started.append(vm)
    for attempt in range(2):  # every boot has one retry
        deadline = time.monotonic() + limit
        late = [vm for vm in vms if vm.ready_s is None
                and not vm.wait_ready(max(0.1, deadline - time.monotonic()))]
        if not late:
            break
        for vm in late:
            vm.kill()
            if attempt == 0:
                vm.start()
        if attempt == 1:
            c.note("vm.boot_timeout", seconds=f"{limit:g}", n=2)
    up = [vm for vm in vms if vm.ready_s is not None]
    d.ready = len(up)
    d.seconds = time.monotonic() - t0 if up else None
    d.total_mib = sum(vm.memory_kib()[1] for vm in up) / 1024 or None
