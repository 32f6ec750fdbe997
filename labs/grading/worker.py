"""Grade one submission inside its sandbox: ``python -m labs.grading.worker JOB.json``.

Joins the sandbox's cgroup first (so everything started from here inherits the limits), starts
the throwaway engine and registry, points a private ``dockerlab`` kernel at them, runs
``nbgrader autograde`` for this one student and assignment (or the job's ``command``, e.g. to
execute a notebook), and deletes the engine again.
Writes ``RESULT.json`` next to the job file: what happened and how long it took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from labctl.state import REPO, LabPaths, State, save_state

from .sandbox import Sandbox

__all__ = ["kernel_spec", "main"]


def kernel_spec(env: dict[str, str]) -> dict[str, object]:
    """The course kernel (same name as the one notebooks ask for), aimed at the throwaway engine."""
    return {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Docker Lab (Python 3)",
        "language": "python",
        "env": env,
    }


def main(argv: list[str]) -> int:
    job_file = Path(argv[0])
    job = json.loads(job_file.read_text())
    box = Sandbox.from_dict(job["sandbox"])
    box.cgroup.join(os.getpid())
    result: dict[str, object] = {"started": time.time()}
    engine, registry = box.engine(), box.registry()
    work = Path(job["work"])
    try:
        t0 = time.monotonic()
        registry.start()
        engine.start()
        result["engine_ready_s"] = round(time.monotonic() - t0, 2)
        home = work / "home"
        save_state(State(engine="lab", docker_host=engine.host, upstream=registry.addr, registry=registry.addr,
                         mirror=box.mirror),
                   LabPaths(home=home, run=box.run))
        env = {
            "DOCKER_HOST": engine.host,
            "LAB_HOME": str(home),
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "PYTHONPATH": str(REPO),
            "DOCKER_CLI_HINTS": "false",
            "DOCKERLAB_LANG": os.environ.get("DOCKERLAB_LANG", "zh"),
            "DOCKERLAB_GRADING": "1",
        }
        kdir = work / "jupyter" / "kernels" / "dockerlab"
        kdir.mkdir(parents=True, exist_ok=True)
        (kdir / "kernel.json").write_text(json.dumps(kernel_spec(env), indent=1))
        nb_env = {**os.environ, **env, "JUPYTER_PATH": str(work / "jupyter"),
                  "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "PYTHONPATH": str(REPO)}
        cmd = job.get("command") or [
            sys.executable, "-m", "nbgrader", "autograde", job["assignment"],
            "--student", job["student"], "--force", "--create",
            f"--Execute.timeout={job['cell_timeout']}"]
        t1 = time.monotonic()
        with open(work / "nbgrader.log", "wb") as log:
            rc = subprocess.call(cmd, cwd=job.get("cwd") or job["course"], env=nb_env, stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        result["autograde_s"] = round(time.monotonic() - t1, 2)
        result["rc"] = rc
    except Exception as e:  # reported per submission; the grader goes on with the others
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        result["limit_hits"] = box.cgroup.limit_hits()  # before the containers (and counts) go
        try:
            registry.stop()
            engine.destroy()
        except Exception as e:
            result["cleanup_error"] = str(e)
        result["peak_memory"] = box.cgroup.peak_memory()
        (work / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
