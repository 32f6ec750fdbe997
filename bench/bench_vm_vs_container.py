"""Median start-up of a microVM and of a container on this host, and their ratio.

    python bench/bench_vm_vs_container.py [--runs 5]

Start-up = from launching qemu (or creating the container) until the workload's ready marker is
read on the host. The VM boots the Debian cloud kernel under the accelerator the probe picked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker

from kernel_ext.connection import lab_config
from kernel_ext.errors import LabError
from kernel_ext.vmcompare import build_assets, default_cache_dir, qemu
from kernel_ext.vmcompare.accel import probe_accel
from kernel_ext.vmcompare.container import ContainerSide


def _spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.3f} s  (min {min(xs):.3f}, max {max(xs):.3f}, n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="also time the whole default comparison")
    args = ap.parse_args()

    assets = build_assets(default_cache_dir(), log=None)
    probe = probe_accel(assets, default_cache_dir())
    machine = qemu.pick_machine(qemu.find_qemu())
    vm_s: list[float] = []
    failed = retried = 0
    for _ in range(args.runs):
        try:
            vm = qemu.boot(assets, accel=probe.accel, machine=machine, timeout=15)
        except LabError as e:
            failed += 1
            print(f"  vm: {e}", file=sys.stderr)
            continue
        vm_s.append(vm.ready_s or 0.0)
        retried += vm.attempts > 1
        vm.stop()

    host = lab_config().docker_host
    client = docker.DockerClient(base_url=host, timeout=120)
    side = ContainerSide(client, session="bench-vmcmp")
    ct_s: list[float] = []
    try:
        side.ensure_image()
        for _ in range(args.runs):
            rc = side.start()
            ct_s.append(rc.ready_s or 0.0)
            side.remove(rc.container)
    finally:
        side.remove_all()
        client.close()

    print(f"VM: qemu {machine}, accelerator {probe.accel.upper()}, kernel {assets.kernel_version}; "
          f"container: busybox on {host}")
    if vm_s:
        print(f"VM start-up        {_spread(vm_s)}  [{retried} needed the retry, {failed} failed]")
    if ct_s:
        print(f"container start-up {_spread(ct_s)}")
    if vm_s and ct_s:
        print(f"ratio VM/container {statistics.median(vm_s) / statistics.median(ct_s):.1f}x")
    if args.full:
        import time

        from kernel_ext import connect
        from kernel_ext.vmcompare import compare

        lab = connect()
        t0 = time.perf_counter()
        compare(lab)
        secs = time.perf_counter() - t0
        lab.cleanup()
        print(f"whole comparison at default size (runs=3, density=4): {secs:.1f} s (goal < 60 s)")
    return 0 if vm_s and ct_s else 1

if __name__ == "__main__":
    raise SystemExit(main())
