"""Classroom load test: K learners through the Hub's REST API, each on their own rootless engine.

    sudo .venv/bin/python bench/bench_classroom.py --learners 20 [--idle 40] [--think 0]

Sets up a classroom of its own (LAB_CLASSROOM_TAG=bench: accounts ``dlbench-N``, removed afterwards),
then: logs every learner in and starts their servers (a few at a time), opens a kernel each, and
measures memory (PSS) per learner while nobody has run a Docker command yet (their engines start on
the first one). The ``--learners`` then each load the extension and pull busybox (their engines start),
memory is measured again (idle, engine up), and they run chapter 6's kind of cells — ``%docker image
ls`` and ``%docker run --rm busybox true`` — in all their kernels at once (``--think`` seconds between
one learner's cells; 0: back to back, the stress case), while the ``--idle`` learners stay logged in
with a kernel open. Reports learners started, spawn time, p50/p95 cell latency, memory per learner idle
(no engine / engine up) and active, and where the CPU went. The reference, measured in the same run:
the same cells with ONE learner active (the others idle), so the ratios say what sharing costs.

The load generator (this process: websocket clients standing in for 20+ browsers on other machines)
runs in a CPU cgroup of its own with a large share, so its own waiting for the CPU is not counted as
the class's latency.

Prints a table and writes bench/results/classroom-<date>-<learners>[-idle<N>].json.
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

from asroot import classroom  # noqa: E402
from labcore import proc  # noqa: E402
from labengine import cgroups  # noqa: E402
from tests.support.classroom_client import Member  # noqa: E402
from asroot.gradeaccounts import account_pids  # noqa: E402

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


def process_cpu_s(uids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) of the live processes of ``uids``, by kind, with the children they
    reaped (the docker CLI is the kernel's, runc and shims are the engine's)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for uid in uids:
        for pid in account_pids(uid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            label = _label(pid)
            out[label] = out.get(label, 0.0) + sum(int(f) for f in fields[11:15]) / tick
    return out


def own_cpu_share() -> None:
    """This load generator in a CPU cgroup of its own with a large share (see the module's docstring)."""
    if cgroups.hierarchy() == "v1":
        d = cgroups.ROOT / "cpu" / "dockerlab-bench-client"
        d.mkdir(exist_ok=True)
        (d / "cpu.shares").write_text("20480")
    else:
        d = cgroups.ROOT / "dockerlab-bench-client"
        d.mkdir(exist_ok=True)
        (d / "cpu.weight").write_text("2000")
    (d / "cgroup.procs").write_text(str(os.getpid()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--learners", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5, help="cells of each kind per learner")
    ap.add_argument("--spawn-at-once", type=int, default=4)
    ap.add_argument("--idle", type=int, default=0, help="more learners who stay logged in with a kernel open")
    ap.add_argument("--think", type=float, default=0.0, help="seconds between one learner's cells")
    ap.add_argument("--keep", action="store_true", help="leave the bench classroom up")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: sudo .venv/bin/python bench/bench_classroom.py")
    own_cpu_share()
    names = [f"dlbench-{i}" for i in range(1, args.learners + args.idle + 1)]
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
        kernels = {m.name: m.kernel() for m in members}
        # One websocket per learner's kernel for the whole run, as a browser keeps one per open notebook.
        channels = {m.name: m.channel(kernels[m.name]) for m in members}
        time.sleep(5)
        # Everyone logged in, a kernel open, no Docker command yet: no engine runs.
        no_engine = {m.name: pss_mib(m.name) for m in members}
        no_engine_parts = pss_breakdown([m.name for m in members])
        engines_before = sum(1 for m in members for pid in account_pids(pwd.getpwnam(m.name).pw_uid)
                             if _label(pid) == "dockerd")
        active = members[:args.learners]
        for m in active:  # the first Docker command starts each active learner's engine
            r = channels[m.name].run("%load_ext kernel_ext\nfrom kernel_ext import connect\nlab = connect()",
                                     timeout=300)
            if r.status != "ok":
                failures.append(f"{m.name}: {r.error}")
            channels[m.name].run("%docker pull -q busybox:1.35", timeout=300)
        time.sleep(5)
        idle = {m.name: pss_mib(m.name) for m in active}
        idle_parts = pss_breakdown([m.name for m in active])
        relay = [pid for pid in account_pids(pwd.getpwnam(classroom.HUB).pw_uid)
                 if _label(pid) == "asroot.classroom_relay"]
        relay_mib = sum(proc.memory_kib(pid)[1] for pid in relay) / 1024  # one for the whole class

        def cells(m: Member) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {c: [] for c in CELLS}
            for _ in range(args.rounds):
                for label, code in CELLS.items():
                    time.sleep(args.think)
                    r = channels[m.name].run(code, timeout=300)
                    if r.status != "ok" or "exited with code" in r.stderr:
                        failures.append(f"{m.name} {label}: {r.error or r.stderr[-200:]}")
                    out[label].append(r.seconds)
            return out

        reference = cells(members[0])  # one learner active, the others idle
        active_mem: dict[str, float] = {}
        uids = [pwd.getpwnam(n).pw_uid for n in names]
        hub_uid = [pwd.getpwnam(classroom.HUB).pw_uid]
        proc0, hub0 = process_cpu_s(uids), process_cpu_s(hub_uid)
        t_loaded = time.monotonic()
        with ThreadPoolExecutor(len(active)) as pool:
            futures = [pool.submit(cells, m) for m in active]
            time.sleep(2)
            active_mem = {m.name: pss_mib(m.name) for m in active}
            results = [f.result() for f in futures]
        loaded_s = time.monotonic() - t_loaded
        n_cells = len(active) * args.rounds * len(CELLS)
        proc1, hub1 = process_cpu_s(uids), process_cpu_s(hub_uid)
        learners_cpu = sum(proc1.values()) - sum(proc0.values())
        hub_cpu = sum(hub1.values()) - sum(hub0.values())
        spent = {k: round(1000 * (v - proc0.get(k, 0.0)) / n_cells, 1) for k, v in proc1.items()
                 if v - proc0.get(k, 0.0) > 0.05}
        cpu_by_process = {k: spent[k] for k in sorted(spent, key=lambda k: -spent[k])}
        loaded = {c: [x for r in results for x in r[c]] for c in CELLS}
    finally:
        if not args.keep:
            classroom.down(say=lambda *_: None)
            classroom.remove_accounts()
    report = {
        "date": date.today().isoformat(), "learners": args.learners, "class_size": len(members),
        "started": len(spawn_s), "failures": failures,
        "machine": {"cpus": os.cpu_count(),
                    "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)},
        "classroom_up_s": round(setup_s, 1),
        "spawn_s": {"p50": round(statistics.median(spawn_s), 1), "p95": round(pct(spawn_s, 95), 1),
                    "max": round(max(spawn_s), 1)},
        "cells": {c: {"reference_p50": round(statistics.median(reference[c]), 3),
                      "reference_p95": round(pct(reference[c], 95), 3),
                      "loaded_p50": round(statistics.median(loaded[c]), 3), "loaded_p95": round(pct(loaded[c], 95), 3),
                      "p95_ratio": round(pct(loaded[c], 95) / pct(reference[c], 95), 2)} for c in CELLS},
        "idle_learners": args.idle, "think_s": args.think,
        "engines_running_before_any_docker_command": engines_before,
        "loaded_phase": {"seconds": round(loaded_s, 1), "cells": n_cells,
                         "learners_cpu_ms_per_cell": round(1000 * learners_cpu / n_cells, 1),
                         "class_services_cpu_ms_per_cell": round(1000 * hub_cpu / n_cells, 1),
                         "machine_share_used": round((learners_cpu + hub_cpu) / (loaded_s * (os.cpu_count() or 1)), 2),
                         "cpu_ms_per_cell_by_long_lived_process": cpu_by_process},
        "memory_mib_per_learner": {"idle_no_engine_mean": round(statistics.mean(no_engine.values()), 1),
                                   "idle_no_engine_by_process": no_engine_parts,
                                   "idle_mean": round(statistics.mean(idle.values()), 1),
                                   "active_mean": round(statistics.mean(active_mem.values()), 1),
                                   "idle_by_process": idle_parts,
                                   "class_relay_total": round(relay_mib, 1)},
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    suffix = f"-idle{args.idle}" if args.idle else ""
    suffix += f"-think{args.think:g}" if args.think else ""
    out = Path(__file__).parent / "results" / f"classroom-{report['date']}-{args.learners}{suffix}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
