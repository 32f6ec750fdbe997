"""Times of the cgroup v2 VM check (tests/vm): the disks' build (cold), the boot, the one-time step,
the engine's start and first container, and grading lab 4's two submissions, all under qemu TCG.
Root only, like the test.

    .venv/bin/python bench/bench_vm_cgroup2.py          # warm: the cached disk
    .venv/bin/python bench/bench_vm_cgroup2.py --cold   # a fresh cache: mmdebstrap and mke2fs too

Writes bench/results/vm-cgroup2-<date>[-cold].json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "vm"))

import vmimage  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true", help="build the VM's disk in a fresh cache first")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmbench-") as tmp:
        if args.cold:
            os.environ["XDG_CACHE_HOME"] = tmp
        run = vmimage.run_check()
    keep = ("setup_s", "prewarm_s", "engine_start_s", "engine_start_attempts", "first_run_s", "engine_stop_s",
            "root_check_s", "limited", "info_cgroup_driver",
            "grade_s", "grade_check_s", "seconds_alice_lab4", "seconds_bomber_lab4", "score_alice_lab4",
            "score_bomber_lab4", "peak_mb_alice_lab4", "peak_mb_bomber_lab4")
    out = {"cold": args.cold, "cores": os.cpu_count(), "load_before": os.getloadavg(),
           "host_s": {k: round(v, 1) for k, v in run.timings.items()},
           "guest": {k: run.results.get(k) for k in keep}, "boot_attempts": run.attempts}
    day = datetime.date.today().isoformat()
    dest = HERE / "results" / f"vm-cgroup2-{day}{'-cold' if args.cold else ''}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0 if run.results.get("limited") == "67108864 50" else 1


if __name__ == "__main__":
    sys.exit(main())
