"""Inside a grading sandbox, as the grading account: ``python -m grader.worker JOB.json``.

Started by the grader through :func:`asroot.grading.sandbox.enter_argv` (the sandbox's cgroup, mount
and network namespaces, the account's uid). Starts the account's rootless engine (tmpfs data, the
course mirror through root's relay, lab 4's registry), says ``READY <dockerd pid>`` on stdout, then
runs ``nbgrader autograde`` on the sandbox's small copy of the course (this one lab, this one
notebook), with a ``dockerlab`` kernel aimed at that engine and at the check service.

Nothing written here decides a grade: the grader takes the scores from the check service's record.
Until ``READY`` no learner code has run, so a failure before it is the grader's ("not graded").
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from labengine.enginepkgs import EngineBinaries
from labengine.rootless import RootlessEngine
from labcore import kernelspec
from labcore.state import REPO, LabPaths, State, save_state

__all__ = ["main"]


def _no_new_privs() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    home = Path(os.environ["HOME"])
    os.umask(0o077)
    t0 = time.monotonic()
    try:
        binaries = EngineBinaries(**job["binaries"])
        engine = RootlessEngine(name="grade", data_root=home / "engine", run=home / "run", logs=home / "logs",
                                binaries=binaries, mirror=job["mirror"],
                                insecure=(job["mirror"], job["registry"]), extra_args=job["engine_args"],
                                systemd=False)  # a grading account has no user manager
        engine.start_timeout = float(job.get("engine_timeout", 60))
        for attempt in range(5):  # dockerd gives its containerd a fixed 15 s, which a starved CPU can miss
            try:
                engine.start()
                break
            except Exception:
                if attempt == 4:
                    raise
        engine.forward([int(job["mirror"].rpartition(":")[2]), int(job["registry"].rpartition(":")[2])],
                       timeout=max(15.0, engine.start_timeout / 4))
        dockerd = int((home / "run" / "grade-dockerd.pid").read_text())
    except Exception as e:  # the grader's fault, not the learner's: "not graded"
        print(f"FAILED the submission's engine did not start: {str(e).splitlines()[0][:300]}", flush=True)
        return 1
    lab = home / "lab"
    save_state(State(engine="grade", docker_host=engine.host, upstream=job["registry"], registry=job["registry"],
                     mirror=job["mirror"], docker_cli=binaries.docker), LabPaths(home=lab, run=home / "run"))
    env = {
        "DOCKER_HOST": engine.host,
        "LAB_HOME": str(lab),
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:{Path(binaries.docker).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "DOCKER_CLI_HINTS": "false",
        "DOCKERLAB_LANG": job.get("lang", "zh"),
        "DOCKERLAB_GRADING": "1",
        "DOCKERLAB_CHECKD": job["checkd"],
    }
    kdir = home / "jupyter" / "kernels" / kernelspec.NAME
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps(kernelspec.spec(env, debugger=False), indent=1))
    print(f"READY {dockerd} {time.monotonic() - t0:.2f}", flush=True)
    nb_env = {**env, "JUPYTER_PATH": str(home / "jupyter"), "JUPYTER_RUNTIME_DIR": str(home / "run" / "jupyter"),
              "JUPYTER_CONFIG_DIR": str(home / "jupyter" / "config"), "JUPYTER_DATA_DIR": str(home / "jupyter")}
    cmd = [sys.executable, "-m", "nbgrader", "autograde", job["assignment"], "--student", job["student"],
           "--force", "--create", f"--Execute.timeout={job['cell_timeout']}"]
    with open(home / "logs" / "nbgrader.log", "wb") as log:
        rc = subprocess.call(cmd, cwd=home / "course", env=nb_env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, preexec_fn=_no_new_privs)
    print(f"DONE {rc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
