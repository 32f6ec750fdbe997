"""One class member's server, started by JupyterHub (SudoSpawner) as that member's account.

Writes the lab state the course kernel reads, copies the course, runs ``jupyterhub-singleuser`` with
the arguments the Hub gave, and holds the member's engine address open: their rootless Docker engine
(with the class's read-only course mirror) and their own registries start on their first Docker command
(:mod:`labctl.activation`), so a learner who is reading costs no engine. When the Hub stops the server
(or the idle culler does), the engine and the registries stop with it. The registries' addresses
inside the engine are served by this process (:func:`labcore.netns.bind_inside`), not by a forwarder
of their own. Learners see the course only: nbgrader's menus are for the instructor.

    python -m classroom.server [jupyterhub-singleuser arguments]
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

from labengine import cgroups
from labcore import netns as forward
from labctl import jupyter
from labcore import proc
from labctl.activation import OnDemand
from labengine.enginepkgs import EngineBinaries
from labengine.registry import Registry
from labengine.rootless import RootlessEngine, running_pid
from labcore.state import State, paths, save_state

from labctl.jupyter import NBGRADER_LAB_OFF, NBGRADER_OFF  # what ./lab up's learner server hides too


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
    then the class's read-only course mirror (a 404 in the first goes on to the second). It listens on
    a path of its own; :class:`~labctl.activation.OnDemand` renames it onto :attr:`address` once it answers."""

    first_mirror: str = ""

    @property
    def socket(self) -> Path:
        return self.run / f"{self.name}-engine.sock"

    @property
    def address(self) -> Path:
        """The path ``DOCKER_HOST`` names (held by the server until the engine starts)."""
        return self.run / f"{self.name}.sock"

    def daemon_json(self) -> dict[str, object]:
        cfg = super().daemon_json()
        if self.first_mirror:
            cfg["registry-mirrors"] = [f"http://{self.first_mirror}", *cfg.get("registry-mirrors", [])]  # type: ignore[misc]
        return cfg

    def stop(self) -> bool:
        was = super().stop()
        if was:
            self.address.unlink(missing_ok=True)
        return was


def engine_started(run: Path, name: str = "lab") -> bool:
    """Whether the member's engine runs (it starts on their first Docker command): the progress page asks
    only then, or its own question would start every learner's engine."""
    return running_pid(run, name) is not None



class Server:
    """What one member's server holds: their lab state, registries and engine (started on demand)."""

    def __init__(self) -> None:
        os.umask(0o077)
        me = pwd.getpwuid(os.getuid())
        self.me = me
        os.environ["LAB_HOME"] = str(Path(me.pw_dir) / ".dockerlab")
        self.p = p = paths()
        p.ensure()
        _join_own_cgroup()
        self.mirror = mirror = os.environ["LAB_CLASS_MIRROR"]
        binaries = EngineBinaries(root=os.environ["LAB_CLASS_ENGINE"],
                                  version=os.environ.get("LAB_CLASS_ENGINE_VERSION", ""),
                                  source="the classroom's copy", packages={})
        self.reg = reg = Registry(name="learner", port=registry_port(me.pw_uid),
                                  storage=p.home / "registry" / "learner", run=p.run, logs=p.logs)
        if not proc.port_free(reg.port) and not reg.pid():
            reg.port = proc.free_port(reg.port + 1)
        # Their own small upstream (unix socket only: no other account can reach it), seeded from the
        # class mirror; inside the engine it is 127.0.0.1:<port>, served by this process.
        self.own = own = Registry(name="own-upstream", port=reg.port + 2000,
                                  storage=p.home / "registry" / "own-upstream", run=p.run, logs=p.logs, unix=True)
        inside = f"127.0.0.1:{own.port}"
        self.engine = engine = ClassEngine(
            name="lab", data_root=p.home / "engine" / "data", run=p.run, logs=p.logs, binaries=binaries, mirror=mirror,
            insecure=(inside, mirror, reg.addr),
            cgroup=cgroups.Delegated.for_engine("lab-" + p.run.name.rpartition("-")[2]),
            # No user manager for a class member (cgroups.delegate(systemd=False)): the cgroupfs request
            # makes a rootless dockerd keep every container in the engine's cgroup, inside the member's
            # limits, on both hierarchies (as the grading sandbox's engines do).
            systemd=False, extra_args=["--exec-opt", "native.cgroupdriver=cgroupfs"])
        engine.first_mirror = inside
        self.state = State(engine="lab", docker_host=f"unix://{engine.address}", docker_cli=binaries.docker,
                           upstream=mirror, mirror=mirror, registry=reg.addr, publisher=own.addr,
                           engine_version=binaries.version, engine_source=binaries.source)

    def prepare(self) -> None:
        """The member's files: lab state, kernel, course, labs, JupyterLab's settings (no engine yet)."""
        p, me = self.p, self.me
        save_state(self.state, p)
        jupyter.install_kernel(self.state, p)
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

    def _start_blocking(self) -> None:
        seed_own_upstream(Path(os.environ.get("LAB_CLASS_MIRROR_STORAGE",
                                              "/var/lib/dockerlab-classroom/registry/course")),
                          self.own.storage)
        self.reg.start()
        self.own.start()
        self.engine.start()

    async def start_engine(self) -> Path:
        """The registries, the engine, and the registries' addresses inside it; returns the engine's socket."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._start_blocking)
        child = int((self.engine.state_dir / "child_pid").read_text())
        targets = [(int(self.mirror.rpartition(":")[2]), ""), (self.reg.port, ""), (self.own.port, str(self.own.sock))]
        socks = await loop.run_in_executor(None, forward.bind_inside, child, [port for port, _ in targets])
        for (port, sock), listener in zip(targets, socks):
            await asyncio.start_server(forward.handler(port, sock, host="127.0.0.1"), sock=listener)
        return self.engine.socket

    def stop(self) -> None:
        self.engine.stop()
        self.reg.stop()
        self.own.stop()


async def serve(server: Server, argv: list[str]) -> int:
    p = server.p
    env = {**os.environ, **jupyter.jupyter_env(p), **jupyter.kernel_env(server.state, p)}
    exe = Path(sys.executable).parent / "jupyterhub-singleuser"
    on_demand = OnDemand(server.engine.address, server.start_engine)
    await on_demand.listen()
    child = subprocess.Popen([str(exe), f"--ServerApp.root_dir={p.course}", *argv], env=env)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, child.send_signal, sig)
    rc = await loop.run_in_executor(None, child.wait)
    on_demand.close()
    return rc


def main(argv: list[str]) -> int:
    server = Server()
    server.prepare()
    try:
        return asyncio.run(serve(server, argv))
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
