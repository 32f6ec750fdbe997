"""The course image (issue 20): size, start-up and idle memory, against ``./lab up`` measured in
the same run.

    sudo ./lab image build
    sudo .venv/bin/python bench/bench_course_image.py [--runs 2]

Under a throwaway rootful dockerd that plays Docker Desktop's role (its own data root, exec root,
bridge; removed afterwards), with the README's command (``--privileged``, a named volume):

- compressed size: ``./lab image save``'s .tar.gz (gzip -6), what a classroom copies around;
- ``docker load`` of that file;
- cold start: ``docker run`` on a NEW volume until JupyterLab answers ``/api/status`` with the token
  the container printed (seeds the volume, starts the inner rootless engine, the registries, JupyterLab);
- warm start: a NEW container on the SAME volume (median of ``--runs``);
- idle memory: the container's cgroup (``docker stats``: page cache excluded), 30 s after it answered;
- the reference: ``./lab up`` of this clone's own lab, warm (``./lab down`` first), as the lab's
  account, until it printed its URL: the ratio warm-image / warm-host is the figure to watch;
- chapter 1's first exercise's check (the notebook's own check cell, in the course kernel, over
  JupyterLab's API; it only reads the engine): its median time in the image and in that ``./lab up``,
  as a ratio.

Results are printed and written to ``bench/results/course-image-<date>.json``. Goals (issue 20):
≤ 1 GiB compressed, ≤ 20 s warm start, idle ≤ 400 MiB. The machine may be busy with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labcore import proc  # noqa: E402
from tests.support.rootful_engine import Engine, pick_subnet  # noqa: E402
from labcore.state import REPO  # noqa: E402
from tests.image.imageutil import NOTEBOOK, Docker, JupyterServer, chapter1_cells, wait_for_url  # noqa: E402

IMAGE = "dockerlab/course:latest"


def _answering(docker: Docker, name: str, port: int) -> float:
    t0 = time.monotonic()
    docker("run", "-d", "--privileged", "--name", name, "-p", f"127.0.0.1:{port}:8888",
           "-v", "dockerlab-bench:/home/learner", IMAGE)
    token, _ = wait_for_url(docker, name)
    server = JupyterServer(port, token)
    while server.status() != 200:
        time.sleep(0.2)
    return time.monotonic() - t0


def _check_s(server: JupyterServer, times: int = 5) -> float:
    """Chapter 1's set-up cells once, then its first check cell ``times`` times: the median seconds of one."""
    setup, check = chapter1_cells(server)
    kernel = server.start_kernel(NOTEBOOK)
    server.execute(kernel, setup)
    took = []
    for _ in range(times):
        t0 = time.monotonic()
        server.execute(kernel, [check])
        took.append(time.monotonic() - t0)
    return statistics.median(took)


def _mib(text: str) -> float:
    num = float("".join(c for c in text if c.isdigit() or c == "."))
    unit = text.lstrip("0123456789.").strip()
    return num * {"B": 1 / 2**20, "KiB": 1 / 1024, "kB": 1 / 1024, "MiB": 1, "MB": 1, "GiB": 1024, "GB": 1024}[unit]


def _host_warm_up() -> tuple[float, float]:
    """``./lab up`` warm: seconds until it printed its URL, and chapter 1's check there (:func:`_check_s`)."""
    lab = [str(REPO / "lab")]
    subprocess.run([*lab, "down"], capture_output=True, check=False)
    subprocess.run([*lab, "up", "--no-jupyter"], capture_output=True, check=True)  # warm: everything built
    subprocess.run([*lab, "down"], capture_output=True, check=True)
    t0 = time.monotonic()
    r = subprocess.run([*lab, "up", "--no-browser"], capture_output=True, text=True, check=True)
    took = time.monotonic() - t0
    try:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/\S*\?token=([0-9a-f]+)", r.stdout + r.stderr)
        assert m, (r.stdout + r.stderr)[-2000:]
        check = _check_s(JupyterServer(int(m.group(1)), m.group(2)))
    finally:
        subprocess.run([*lab, "down"], capture_output=True, check=False)
    return took, check


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root (a rootful dockerd plays Docker Desktop)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dlimg-bench-", dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix="dlimgb-", dir="/tmp"))
    seed = os.getpid() % 200
    engine = Engine(name="desktop", data_root=work / "data", run=run, logs=work, bridge=f"dlimgb{seed}",
                    subnet=pick_subnet(seed + 41))
    out: dict[str, object] = {"date": time.strftime("%Y-%m-%d"), "machine": {"cpus": os.cpu_count()}}
    try:
        saved = subprocess.run([str(REPO / "lab"), "image", "save"], capture_output=True, text=True, check=True)
        gz = Path(saved.stdout.split()[1])
        out["compressed_mib"] = round(gz.stat().st_size / 2**20, 1)
        out["sha256"] = saved.stdout.split()[0]
        engine.start()
        docker = Docker(engine.host)
        t0 = time.monotonic()
        docker("load", "-i", str(gz), timeout=1800)
        out["load_s"] = round(time.monotonic() - t0, 1)
        out["unpacked_mib"] = round(int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout) / 2**20, 1)
        port = proc.free_port(18988)
        out["cold_start_s"] = round(_answering(docker, "bench-0", port), 1)
        time.sleep(30)
        usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "bench-0").stdout.split("/")[0]
        out["idle_mib"] = round(_mib(usage.strip()), 1)
        out["check_s_image"] = round(_check_s(JupyterServer(port, wait_for_url(docker, "bench-0")[0])), 2)
        docker("stop", "-t", "30", "bench-0", timeout=90)
        docker("rm", "bench-0")
        warm = []
        for i in range(1, args.runs + 1):
            warm.append(_answering(docker, f"bench-{i}", port))
            docker("stop", "-t", "30", f"bench-{i}", timeout=90)
            docker("rm", f"bench-{i}")
        out["warm_start_s"] = [round(w, 1) for w in warm]
        host_up, host_check = _host_warm_up()
        out["host_warm_up_s"], out["check_s_host"] = round(host_up, 1), round(host_check, 2)
        out["warm_ratio_image_vs_host"] = round(statistics.median(warm) / host_up, 2)
        out["check_ratio_image_vs_host"] = round(float(out["check_s_image"]) / host_check, 2)  # type: ignore[arg-type]
    finally:
        engine.destroy()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
    print(json.dumps(out, indent=1))
    dest = REPO / "bench" / "results" / f"course-image-{out['date']}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
