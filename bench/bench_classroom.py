"""Classroom load test: K learners through the Hub's REST API, each on their own rootless engine.

    sudo .venv/bin/python bench/bench_classroom.py --learners 10 [--idle 0]

Sets up a classroom of its own (LAB_CLASSROOM_TAG=bench: accounts ``dlbench-N``, removed afterwards),
then: logs every learner in and starts their servers (a few at a time), opens a kernel each, and runs
chapter 6's kind of cells — ``%docker image ls`` and ``%docker run --rm busybox:1.35 true`` — in all
kernels at once. Reports learners started, spawn time, p50/p95 cell latency, and memory (PSS) per
learner idle and active. The reference, measured in the same run: the same cells with ONE learner
active (the others idle), so the ratios say what sharing the machine costs.

Prints a table and writes bench/results/classroom-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

os.environ["LAB_CLASSROOM_TAG"] = "bench"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labctl import classroom, proc  # noqa: E402
from labctl.classroom_client import Member  # noqa: E402
from labctl.gradeaccounts import account_pids  # noqa: E402

CELLS = {"image ls": "%docker image ls -q", "run --rm": "%docker run --rm busybox:1.35 true"}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def pss_mib(name: str) -> float:
    uid = pwd.getpwnam(name).pw_uid
    return sum(proc.memory_kib(p)[1] for p in account_pids(uid)) / 1024


def _label(pid: int) -> str:
    """What a process is, for the memory breakdown: a Python module or script, else the program."""
    try:
        argv = [a.decode(errors="replace") for a in proc.cmdline(pid)]
    except OSError:
        return "?"
    if not argv:
        return "?"
    if "python" in Path(argv[0]).name:
        if "-m" in argv:
            return argv[argv.index("-m") + 1]
        script = [a for a in argv[1:] if not a.startswith("-")]
        return Path(script[0]).name if script else "python"
    return Path(argv[0]).name


def pss_breakdown(names: list[str]) -> dict[str, float]:
    """Mean PSS (MiB) per learner of each kind of process."""
    total: dict[str, float] = {}
    for name in names:
        for pid in account_pids(pwd.getpwnam(name).pw_uid):
            label = _label(pid)
            total[label] = total.get(label, 0.0) + proc.memory_kib(pid)[1] / 1024
    return {k: round(v / len(names), 1) for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--learners", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5, help="cells of each kind per learner")
    ap.add_argument("--spawn-at-once", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="leave the bench classroom up")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: sudo .venv/bin/python bench/bench_classroom.py")
    names = [f"dlbench-{i}" for i in range(1, args.learners + 1)]
    if classroom.CONFIG.exists():
        classroom.down(say=lambda *_: None)
        classroom.remove_accounts()
    t0 = time.monotonic()
    cfg, passwords = classroom.up(0, names=names, instructor="dlbench-teach", port=8400, say=print)
    setup_s = time.monotonic() - t0
    members = [Member(cfg.url.rstrip("/"), n, passwords[n]) for n in names]
    failures: list[str] = []
    try:
        def spawn(m: Member) -> float:
            assert m.login(), m.name
            return m.start(timeout=600)

        with ThreadPoolExecutor(args.spawn_at_once) as pool:
            spawn_s = list(pool.map(spawn, members))
        kernels = {}
        for m in members:
            k = m.kernel()
            r = m.run(k, "%load_ext kernel_ext\nfrom kernel_ext import connect\nlab = connect()", timeout=300)
            if r.status != "ok":
                failures.append(f"{m.name}: {r.error}")
            kernels[m.name] = k
            m.run(k, "%docker pull -q busybox:1.35", timeout=300)
        time.sleep(5)
        idle = {m.name: pss_mib(m.name) for m in members}
        idle_parts = pss_breakdown([m.name for m in members])
        relay = [pid for pid in account_pids(pwd.getpwnam(classroom.HUB).pw_uid) if _label(pid) == "labctl.classroom_relay"]
        relay_mib = sum(proc.memory_kib(pid)[1] for pid in relay) / 1024  # one for the whole class

        def cells(m: Member) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {c: [] for c in CELLS}
            for _ in range(args.rounds):
                for label, code in CELLS.items():
                    r = m.run(kernels[m.name], code, timeout=300)
                    if r.status != "ok" or "exited with code" in r.stderr:
                        failures.append(f"{m.name} {label}: {r.error or r.stderr[-200:]}")
                    out[label].append(r.seconds)
            return out

        reference = cells(members[0])  # one learner active, the others idle
        active_mem: dict[str, float] = {}
        with ThreadPoolExecutor(len(members)) as pool:
            futures = [pool.submit(cells, m) for m in members]
            time.sleep(2)
            active_mem = {m.name: pss_mib(m.name) for m in members}
            results = [f.result() for f in futures]
        loaded = {c: [x for r in results for x in r[c]] for c in CELLS}
    finally:
        if not args.keep:
            classroom.down(say=lambda *_: None)
            classroom.remove_accounts()
    report = {
        "date": date.today().isoformat(), "learners": len(members), "started": len(spawn_s), "failures": failures,
        "machine": {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)},
        "classroom_up_s": round(setup_s, 1),
        "spawn_s": {"p50": round(statistics.median(spawn_s), 1), "p95": round(pct(spawn_s, 95), 1), "max": round(max(spawn_s), 1)},
        "cells": {c: {"reference_p50": round(statistics.median(reference[c]), 3), "reference_p95": round(pct(reference[c], 95), 3),
                      "loaded_p50": round(statistics.median(loaded[c]), 3), "loaded_p95": round(pct(loaded[c], 95), 3),
                      "p95_ratio": round(pct(loaded[c], 95) / pct(reference[c], 95), 2)} for c in CELLS},
        "memory_mib_per_learner": {"idle_mean": round(statistics.mean(idle.values()), 1),
                                   "active_mean": round(statistics.mean(active_mem.values()), 1),
                                   "idle_by_process": idle_parts,
                                   "class_relay_total": round(relay_mib, 1)},
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    out = Path(__file__).parent / "results" / f"classroom-{report['date']}-{len(members)}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
