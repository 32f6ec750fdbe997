"""``./lab grade`` on 30 submissions (the gradable samples of ``tests/labs_submissions``, repeated
under new student ids), two at a time: seconds per submission and peak memory per sandbox.

    sudo LAB_HOME=.lab .venv/bin/python bench/bench_grading.py [--n 30] [--jobs 2] [--rootful REV]

The rootless sandbox (this tree's ``labs/grading``: a pool account, its rootless engine, cgroup, tmpfs,
namespaces) always runs. ``--rootful REV`` also runs the previous grader (root's rootful Docker 20.10
sandbox) from git revision ``REV`` (e.g. ``4eecf13``, the last one with it), checked out into a
temporary worktree and run with the same venv on the same submissions, right after: the reference
measured in the same session on the same machine.

Per run: wall time, wall time / submissions, the median and spread of each submission's own seconds
(sandbox made → grades recorded), the median engine start, the peak memory of one sandbox's cgroup
(engine, kernel, nbgrader, containers and tmpfs pages), and the load average before and after (the
machine may be shared: compare ratios within one run). Results go to ``bench/results/grading-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "labs_submissions" / "submitted"


def make_batch(dest: Path, n: int) -> int:
    """``n`` submissions: the gradable samples in turn, each under a new student id."""
    pool = sorted(p for p in SAMPLES.glob("*/*/*.ipynb") if p.parent.name == p.stem and p.parents[1].name != "frank")
    for i in range(n):
        src = pool[i % len(pool)]
        d = dest / f"{src.parents[1].name}-{i:02d}" / src.parent.name
        d.mkdir(parents=True)
        shutil.copy(src, d / src.name)
    return n


def run(python: str, tree: Path, subs: Path, jobs: int, label: str) -> dict[str, object]:
    course = Path(tempfile.mkdtemp(prefix=f"bench-grade-{label}-"))
    out = course / "results"
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.run([python, "-m", "grader.cli", "--course", str(course / "c"), "autograde", str(subs),
                           "--jobs", str(jobs), "--cell-timeout", "30", "--out", str(out)],
                          cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"{label}: grading failed:\n{proc.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    graded = [r for r in report if r.get("tasks")]
    results = [json.loads(p.read_text()) for p in (course / "c" / "grading").glob("*/result.json")]
    secs = [r["seconds"] for r in graded]
    peaks = [r["peak_memory_mb"] for r in graded]
    ready = [float(r["engine_ready_s"]) for r in results if r.get("engine_ready_s")]
    shutil.rmtree(course, ignore_errors=True)
    return {
        "label": label, "submissions": len(graded), "jobs": jobs, "wall_s": round(wall, 1),
        "wall_per_submission_s": round(wall / max(1, len(graded)), 2),
        "submission_s": {"median": statistics.median(secs), "min": min(secs), "max": max(secs)},
        "engine_ready_s_median": round(statistics.median(ready), 2) if ready else None,
        "peak_memory_mb": {"median": statistics.median(peaks), "max": max(peaks)},
        "not_graded": sum(1 for r in graded if r.get("not_graded")),
        "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rootful", metavar="REV", help="also run the previous, rootful grader from this git revision")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("the grading bench runs as root (./lab grade makes the sandboxes): sudo ...", file=sys.stderr)
        return 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-grade-subs-") as tmp:
        subs = Path(tmp)
        make_batch(subs, args.n)
        runs.append(run(sys.executable, REPO, subs, args.jobs, "rootless"))
        print(json.dumps(runs[-1], indent=1), flush=True)
        if args.rootful:
            old = Path(tmp + "-old")
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.rootful],
                           check=True, capture_output=True)
            try:
                runs.append(run(sys.executable, old, subs, args.jobs, f"rootful@{args.rootful}"))
                print(json.dumps(runs[-1], indent=1), flush=True)
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    dest = REPO / "bench" / "results" / f"grading-{time.strftime('%Y%m%d-%H%M')}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, "runs": runs}, indent=1))
    print(f"written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
