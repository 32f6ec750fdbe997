"""One class member's server, started by JupyterHub (SudoSpawner) as that member's account.

Starts the member's rootless Docker engine (with the class's read-only course mirror) and their own
registry, writes the lab state the course kernel reads, then runs ``jupyterhub-singleuser`` with the
arguments the Hub gave. When the Hub stops the server (or the idle culler does), the engine and the
registry stop with it. Learners see the course only: nbgrader's menus are for the instructor.

    python -m labctl.classroom_server [jupyterhub-singleuser arguments]
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

from . import cgroups, jupyter, proc
from .enginepkgs import EngineBinaries
from .registry import Registry
from .rootless import RootlessEngine
from .state import State, paths, save_state

from .jupyter import NBGRADER_LAB_OFF, NBGRADER_OFF  # what ./lab up's learner server hides too


def _join_own_cgroup() -> None:
    """Everything of this server (JupyterLab, kernels, the engine) inside the member's limits. Root's
    gate (``classroom_enter``) already moved the mediator there; this holds if the server was started
    some other way (the same files, delegated to the member)."""
    try:
        cgroups.enter(pwd.getpwuid(os.getuid()).pw_name)
    except OSError:
        pass  # v2 without systemd: root's `classroom up` could not hand over a common ancestor


def registry_port(uid: int) -> int:
    return 5300 + uid % 2000


GREETING = "dockerlab/greeting"  # the repository whose tag chapter 6 moves (registry.move_tag)


def seed_own_upstream(mirror_storage: Path, dest: Path, repo: str = GREETING) -> None:
    """Copy one repository (its tags, manifests and blobs) out of the class mirror's storage into this
    learner's own small registry: chapter 6 moves ``latest`` there, for this learner only."""
    import shutil

    v2 = mirror_storage / "docker" / "registry" / "v2"
    out = dest / "docker" / "registry" / "v2"
    if (out / "repositories" / repo).exists() or not (v2 / "repositories" / repo).exists():
        return
    shutil.copytree(v2 / "repositories" / repo, out / "repositories" / repo)
    for link in (out / "repositories" / repo).rglob("link"):
        digest = link.read_text().strip().removeprefix("sha256:")
        src = v2 / "blobs" / "sha256" / digest[:2] / digest / "data"
        if src.exists():
            target = out / "blobs" / "sha256" / digest[:2] / digest / "data"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


class ClassEngine(RootlessEngine):
    """The learner's engine: two mirrors, their own small upstream first (chapter 6's moved tag),
    then the class's read-only course mirror (a 404 in the first goes on to the second)."""

    first_mirror: str = ""

    def daemon_json(self) -> dict[str, object]:
        cfg = super().daemon_json()
        if self.first_mirror:
            cfg["registry-mirrors"] = [f"http://{self.first_mirror}", *cfg.get("registry-mirrors", [])]  # type: ignore[misc]
        return cfg


def prepare() -> tuple[State, RootlessEngine, Registry]:
    os.umask(0o077)
    me = pwd.getpwuid(os.getuid())
    os.environ["LAB_HOME"] = str(Path(me.pw_dir) / ".dockerlab")
    p = paths()
    p.ensure()
    _join_own_cgroup()
    mirror = os.environ["LAB_CLASS_MIRROR"]
    binaries = EngineBinaries(root=os.environ["LAB_CLASS_ENGINE"], version=os.environ.get("LAB_CLASS_ENGINE_VERSION", ""),
                              source="the classroom's copy", packages={})
    reg = Registry(name="learner", port=registry_port(me.pw_uid), storage=p.home / "registry" / "learner",
                   run=p.run, logs=p.logs)
    if not proc.port_free(reg.port) and not reg.pid():
        reg.port = proc.free_port(reg.port + 1)
    reg.start()
    # Their own small upstream (unix socket only: no other account can reach it), seeded from the
    # class mirror; inside the engine it is 127.0.0.1:<port>, through the forwarder.
    own = Registry(name="own-upstream", port=reg.port + 2000, storage=p.home / "registry" / "own-upstream",
                   run=p.run, logs=p.logs, unix=True)
    seed_own_upstream(Path(os.environ.get("LAB_CLASS_MIRROR_STORAGE", "/var/lib/dockerlab-classroom/registry/course")),
                      own.storage)
    own.start()
    inside = f"127.0.0.1:{own.port}"
    engine = ClassEngine(name="lab", data_root=p.home / "engine" / "data", run=p.run, logs=p.logs,
                         binaries=binaries, mirror=mirror, insecure=(inside, mirror, reg.addr),
                         cgroup=cgroups.Delegated.for_engine("lab-" + p.run.name.rpartition("-")[2]))
    engine.first_mirror = inside
    engine.start()
    engine.forward([int(mirror.rpartition(":")[2]), reg.port, f"{own.port}={own.sock}"])  # type: ignore[list-item]
    state = State(engine="lab", docker_host=engine.host, docker_cli=binaries.docker, upstream=mirror,
                  mirror=mirror, registry=reg.addr, publisher=own.addr, engine_version=binaries.version,
                  engine_source=binaries.source)
    save_state(state, p)
    jupyter.install_kernel(state, p)
    jupyter.copy_course(p)
    jupyter._course_settings(p)  # noqa: SLF001 - no news/update prompts (offline), every cell rendered
    release = Path(os.environ.get("LAB_CLASS_RELEASE", "/var/lib/dockerlab-classroom/release"))
    for nb in sorted(release.glob("lab*/lab*.ipynb")):  # the graded labs, copied once: the learner's work stays
        dest = p.course / "labs" / nb.parent.name / nb.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(nb.read_bytes())
    if me.pw_name != os.environ.get("LAB_CLASS_INSTRUCTOR"):
        cfg = p.jupyter / "config"
        (cfg / "labconfig").mkdir(parents=True, exist_ok=True)
        (cfg / "jupyter_server_config.json").write_text(json.dumps(NBGRADER_OFF))
        (cfg / "labconfig" / "page_config.json").write_text(json.dumps(NBGRADER_LAB_OFF))
    return state, engine, reg


def main(argv: list[str]) -> int:
    state, engine, reg = prepare()
    p = paths()
    env = {**os.environ, **jupyter.jupyter_env(p), **jupyter.kernel_env(state, p)}
    exe = Path(sys.executable).parent / "jupyterhub-singleuser"
    child = subprocess.Popen([str(exe), f"--ServerApp.root_dir={p.course}", *argv], env=env)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    rc = child.wait()
    engine.stop()
    reg.stop()
    Registry(name="own-upstream", port=0, storage=p.home / "registry" / "own-upstream", run=p.run, logs=p.logs,
             unix=True).stop()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
