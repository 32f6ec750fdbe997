"""The course image's two roles in a Kubernetes learner pod (deploy/kubernetes/values.yaml), selected
by the container's first argument (``courseimage.entrypoint`` dispatches):

``engine``
    The pod's engine sidecar: the image's rootless Docker Engine (the same Debian packages and the same
    RootlessKit set-up as ``./lab up``, :class:`labengine.rootless.RootlessEngine`), as the image's
    unprivileged ``learner``, its API on one unix socket in a volume the notebook container shares
    (``--socket``), its data root in another (``--data``), no TCP listener. Stops the engine (and with it
    the learner's containers) on SIGTERM.
``notebook``
    The notebook container: writes the lab state the course kernel reads (the engine's socket, the
    course mirror, the learner's registry at the pod's IP), installs the course kernel, copies the
    chapters once into the learner's home, hides nbgrader unless ``DOCKERLAB_ROLE=instructor``, then
    execs ``jupyterhub-singleuser`` (the Hub's spawner set ``JUPYTERHUB_API_TOKEN``). Without a Hub
    (no such token: the image tried on its own, or the test) it serves plain JupyterLab with a token
    of its own and prints the URL, as the self-paced image does.

The Kubernetes twin of ``classroom.server``, minus what the pod does itself: the limits are the
containers' resources, the registries are sidecars (``docker-registry`` from this same image).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from labcore.errors import LabFailure
from labcore.state import State, paths, save_state
from labctl import jupyter
from labengine import enginepkgs
from labengine.rootless import RootlessEngine

__all__ = ["engine_role", "main", "notebook_role", "prepare"]

OPT = Path("/opt/dockerlab")
ENGINE = OPT / "engine"  # the engine packages the build staged (courseimage.build._stage)
PORT = 8888


def say(msg: str) -> None:
    print(f"[dockerlab] {msg}", flush=True)


def image_engine() -> enginepkgs.EngineBinaries:
    data = json.loads((ENGINE / "current.json").read_text())
    return enginepkgs.EngineBinaries(**data)


def prepare() -> dict[str, str]:
    """The notebook role's preparation; the environment for jupyterhub-singleuser (or JupyterLab)."""
    os.umask(0o077)
    os.environ.setdefault("LAB_HOME", str(Path.home() / ".dockerlab"))
    p = paths()
    p.ensure()
    mirror = os.environ["DOCKERLAB_MIRROR"]
    registry = f"{os.environ['POD_IP']}:{os.environ.get('DOCKERLAB_REGISTRY_PORT', '5102')}"
    # the engine role's own CLI (the same packages): `!docker`, `%docker` and a terminal speak its version
    engine = image_engine() if (ENGINE / "current.json").exists() else None
    state = State(engine="pod", docker_host=os.environ["DOCKER_HOST"],
                  docker_cli=engine.docker if engine else "/usr/bin/docker",
                  upstream=mirror, mirror=mirror, registry=registry,
                  engine_version=engine.version if engine else os.environ.get("DOCKERLAB_ENGINE_VERSION", ""),
                  engine_source="the pod's rootless engine (the course image's engine role)")
    save_state(state, p)
    jupyter.install_kernel(state, p)
    jupyter.copy_course(p)
    cfg = p.jupyter / "config"
    (cfg / "labconfig").mkdir(parents=True, exist_ok=True)
    learner = os.environ.get("DOCKERLAB_ROLE") != "instructor"
    for f, off in ((cfg / "jupyter_server_config.json", jupyter.NBGRADER_OFF),
                   (cfg / "labconfig" / "page_config.json", jupyter.NBGRADER_LAB_OFF)):
        if learner:
            f.write_text(json.dumps(off))
        else:
            f.unlink(missing_ok=True)
    return {**os.environ, **jupyter.jupyter_env(p), **jupyter.kernel_env(state, p)}


def notebook_role(argv: list[str]) -> int:
    env = prepare()
    course = str(paths().course)
    bindir = Path(sys.executable).parent
    if os.environ.get("JUPYTERHUB_API_TOKEN"):
        exe = bindir / "jupyterhub-singleuser"
        os.execve(exe, [str(exe), f"--ServerApp.root_dir={course}", *argv], env)
    token = secrets.token_hex(24)
    say(f"no JupyterHub (JUPYTERHUB_API_TOKEN is unset): JupyterLab on its own. "
        f"JupyterLab: http://127.0.0.1:{PORT}/lab?token={token}")
    exe = bindir / "jupyter-lab"
    os.execve(exe, [str(exe), "--ip=0.0.0.0", f"--port={PORT}", "--no-browser", f"--ServerApp.root_dir={course}",
                    f"--IdentityProvider.token={token}", *argv], env)
    return 1  # not reached


def engine_role(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="engine", description="the pod's rootless Docker Engine")
    ap.add_argument("--socket", required=True, help="the engine's unix socket, in the volume the notebook shares")
    ap.add_argument("--data", required=True, help="the engine's data root (a volume)")
    ap.add_argument("--registry-mirror", default=None, help="host:port of the course mirror")
    ap.add_argument("--insecure-registry", action="append", default=[], help="host:port of a plain-HTTP registry")
    args = ap.parse_args(argv)
    os.umask(0o077)
    if os.getuid() == 0:
        say("the engine role runs as an unprivileged uid (runAsUser: 1000), never as root.")
        return 2
    run = Path(os.environ.get("DOCKERLAB_ENGINE_RUN", f"/tmp/dockerlab-engine-{os.getuid()}"))
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = Path(args.socket)
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)  # left by a restarted sidecar
    # data root and daemon.json (beside it) both in the data volume
    engine = RootlessEngine(name="pod", data_root=Path(args.data) / "data", run=run, logs=run, binaries=image_engine(),
                            mirror=args.registry_mirror, insecure=tuple(args.insecure_registry),
                            extra_args=["-H", f"unix://{sock}"], systemd=False, start_timeout=120)
    stop = {"asked": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        engine.start()
    except LabFailure as e:
        say(f"the engine did not start: {e}")
        sys.stdout.write(engine.log.read_text(errors="replace")[-4000:] if engine.log.exists() else "")
        return 1
    os.chmod(sock, 0o600)  # the notebook container runs as the same uid
    say(f"rootless Docker Engine {engine.binaries.version} on unix://{sock}")
    while not stop["asked"]:
        time.sleep(1)
        if not engine.pid():
            say("the engine stopped: its log follows")
            sys.stdout.write(engine.log.read_text(errors="replace")[-4000:])
            return 1
    engine.stop()
    sock.unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    role, rest = (argv[0], argv[1:]) if argv else ("", [])
    if role == "engine":
        return engine_role(rest)
    if role == "notebook":
        return notebook_role(rest)
    say(f"unknown role {role!r}: the course image's roles are 'engine' and 'notebook' (no argument: the "
        "self-paced course).")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
