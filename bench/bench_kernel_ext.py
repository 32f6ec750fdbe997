"""Benchmarks for kernel_ext, each a ratio against a reference measured in the same run.

  python bench/bench_kernel_ext.py            (needs the lab: ./lab up --no-jupyter; eval "$(./lab env)")

1. image listing with 200 images: Lab.images() vs `docker image ls`          goal <= 0.5x
2. pull of nginx (~95 MB) from the mirror with the live view's listener vs `docker pull`   goal <= 1.1x
3. layer_graph for 200 images / 1,000 layers: build + SVG                     goal <= 1 s
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel_ext import connect
from kernel_ext.connection import lab_config
from kernel_ext.graph import GraphImage, GraphSnapshot
from kernel_ext.views.graph import build_layer_graph


def timed(fn, n: int = 5) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def cli(*args: str) -> None:
    subprocess.run([lab_config().docker_cli, *args], check=True, capture_output=True)


def bench_listing(lab) -> None:  # type: ignore[no-untyped-def]
    lab.pull("busybox", progress=False)
    base = lab.client.containers.create("busybox", "true", labels=lab.labels, name=f"bench-{lab.session}")
    made = []
    for i in range(200):
        img = base.commit(repository="bench-list", tag=f"t{i}",
                          changes=[f"LABEL org.dockerlab.session={lab.session}", f"ENV I={i}"])
        made.append(img)
    try:
        ours = timed(lambda: lab.images())
        theirs = timed(lambda: cli("image", "ls"))
        print(f"image listing, {len(lab.images().rows)} images: Lab.images {ours*1000:.0f} ms, "
              f"docker image ls {theirs*1000:.0f} ms, ratio {ours/theirs:.2f}x (goal <= 0.5x)")
    finally:
        lab.cleanup()


def bench_pull(lab) -> None:  # type: ignore[no-untyped-def]
    from kernel_ext.pull import PullProgress

    calls = []

    def listener(p: PullProgress) -> None:  # what the live view does per update: read every layer
        calls.append(sum(x.fraction for x in p.layers.values()))

    def drop() -> None:
        subprocess.run([lab_config().docker_cli, "image", "rm", "-f", "nginx"], capture_output=True)

    ours, theirs = [], []
    for _ in range(3):
        drop()
        t0 = time.perf_counter()
        lab.pull("nginx", progress=listener)
        ours.append(time.perf_counter() - t0)
        drop()
        t0 = time.perf_counter()
        cli("pull", "nginx")
        theirs.append(time.perf_counter() - t0)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"pull nginx from the mirror: Lab.pull + view listener {o:.2f} s ({len(calls)//3} updates/pull), "
          f"docker pull {t:.2f} s, ratio {o/t:.2f}x (goal <= 1.1x)")


def bench_graph() -> None:
    import hashlib

    def h(s: str) -> str:
        return "sha256:" + hashlib.sha256(s.encode()).hexdigest()

    images = []
    for i in range(200):  # 40 bases x 5 images, each with 5 layers: 1,000 layer slots, shared bottoms
        base = [h(f"base{i % 40}-{k}") for k in range(3)]
        chain = tuple(base + [h(f"img{i}-{k}") for k in range(2)])
        images.append(GraphImage(h(f"id{i}"), (f"img{i}:latest",), chain, (1000,) * 5, ("RUN x",) * 5, 5000))
    snap = GraphSnapshot(tuple(images))
    secs = timed(lambda: build_layer_graph(snap).svg(), n=3)
    print(f"layer_graph, 200 images / 1,000 layers: build + SVG {secs:.2f} s (goal <= 1 s)")


if __name__ == "__main__":
    lab = connect()  # a fresh session id: cleanup() removes exactly what this run made
    bench_listing(lab)
    bench_pull(lab)
    bench_graph()
