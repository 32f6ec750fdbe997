"""``./lab grade`` on 30 submissions (the gradable samples of ``tests/labs_submissions``, repeated
under new student ids), two at a time: seconds per submission, peak memory per sandbox, and the peak
memory of root's grader process itself.

    sudo LAB_HOME=.lab .venv/bin/python bench/bench_grading.py [--n 30] [--jobs 2] [--flood] [--reference REV]

This tree's grader always runs. ``--flood`` adds ``tests/labs_submissions/hostile/h-flood`` (600 check
requests with 60 KB answers, 3 MB of output) to the batch: what root holds of a flooding submission
shows in the grader's peak. ``--reference REV`` also runs the grader of git revision ``REV`` (e.g.
``420bbba``, before the layout round), checked out into a temporary worktree and run with the same venv
on the same submissions, right after: the reference measured in the same session on the same machine.

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


# The grader's entry point in each generation of the tree; run under a wrapper that reports the process's
# own peak resident memory (root's, not the sandboxes').
ENTRIES = (("asroot/grading/autograde.py", "asroot.grading.autograde"), ("labs/grading/cli.py", "labs.grading.cli"))
PEAK = ("import atexit, resource, runpy, sys; mod, out = sys.argv[1], sys.argv[2]; sys.argv = [mod, *sys.argv[3:]]; "
        "atexit.register(lambda: open(out, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))); "
        "runpy.run_module(mod, run_name='__main__')")


def run(python: str, tree: Path, subs: Path, jobs: int, label: str) -> dict[str, object]:
    course = Path(tempfile.mkdtemp(prefix=f"bench-grade-{label}-"))
    out = course / "results"
    entry = next(mod for path, mod in ENTRIES if (tree / path).exists())
    peak_file = course / "grader-peak-kib"
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.run([python, "-c", PEAK, entry, str(peak_file), "--course", str(course / "c"), "autograde",
                           str(subs), "--jobs", str(jobs), "--cell-timeout", "30", "--out", str(out)],
                          cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"{label}: grading failed:\n{proc.stderr[-2000:]}")
    grader_peak_mb = round(int(peak_file.read_text()) / 1024, 1) if peak_file.exists() else None
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
        "not_graded": sum(1 for r in report if r.get("not_graded")),
        "root_grader_peak_rss_mb": grader_peak_mb,
        "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--flood", action="store_true", help="add the flooding hostile submission to the batch")
    ap.add_argument("--reference", metavar="REV", help="also run the grader of this git revision (same submissions)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("the grading bench runs as root (./lab grade makes the sandboxes): sudo ...", file=sys.stderr)
        return 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-grade-subs-") as tmp:
        subs = Path(tmp)
        make_batch(subs, args.n)
        if args.flood:
            shutil.copytree(SAMPLES.parent / "hostile" / "h-flood", subs / "h-flood")
        runs.append(run(sys.executable, REPO, subs, args.jobs, "this tree"))
        print(json.dumps(runs[-1], indent=1), flush=True)
        if args.reference:
            old = Path(tmp + "-old")
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.reference],
                           check=True, capture_output=True)
            try:
                runs.append(run(sys.executable, old, subs, args.jobs, f"reference@{args.reference}"))
                print(json.dumps(runs[-1], indent=1), flush=True)
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    dest = REPO / "bench" / "results" / f"grading-{time.strftime('%Y%m%d-%H%M')}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, "flood": args.flood, "runs": runs}, indent=1))
    print(f"written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
