"""Throwaway rootless Docker Engines of the learner's own, started from the learner's daemon.json.

``start_engine`` starts one to see whether dockerd accepts a file, and deletes it at once.
``OwnEngine`` keeps one up, so a chapter can live the whole loop of a system's engine: edit
daemon.json, restart the engine, read ``docker info`` (``docker -H {engine.host} info``). It is never
the lab's engine: its own data root, socket and namespaces in a private temporary directory, stopped
and deleted by ``stop()``, by ``with``, or when the kernel exits. The lab's registries answer inside it
at the same ``127.0.0.1:PORT`` addresses as in the lab's engine (the forwarder of :mod:`labcore.netns`).

dockerd reads its configuration file first thing at start: a malformed one stops it there, with the
same message a system's engine writes to its log (``unable to configure the Docker daemon with file
…``). The engine here is the lab's own dockerd (same version), run as the learner's account in a
private temporary directory through RootlessKit, as ``./lab up`` runs the lab's engine; it is
stopped and deleted again before the function returns, whether it started or not.

>>> from kernel_ext.throwaway import refusal
>>> refusal('x\\nfailed to start daemon: unable to configure the Docker daemon with file /t/daemon.json: '
...         'invalid character \\']\\' looking for beginning of value\\n')
"unable to configure the Docker daemon with file /t/daemon.json: invalid character ']' looking for beginning of value"
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from .check import CheckResult
from .messages import t

__all__ = ["OwnEngine", "refusal", "running_engines", "start_engine", "stop_all"]

_REFUSED = re.compile(r"unable to configure the Docker daemon[^\n]*")


def refusal(log: str) -> str:
    """The line in dockerd's output that says why it refused its configuration ("" if none does)."""
    found = _REFUSED.findall(log)
    return found[-1].strip() if found else ""


def _binaries(docker_cli: str) -> Any:
    from labengine.enginepkgs import EngineBinaries

    cli = Path(docker_cli)
    root = "/" if cli == Path("/usr/bin/docker") else str(cli.parents[2])
    return EngineBinaries(root=root, version="", source="", packages={})


def start_engine(daemon_json: str | Path, lab: Any = None, timeout: float = 60.0) -> CheckResult:
    """Start a throwaway engine with ``daemon_json``: ✔ when it came up and answered, ✘ with dockerd's
    own reason when it refused to start. Either way nothing of it is left afterwards."""
    from labcore import proc
    from labengine.rootless import RootlessEngine

    from .check import _lab

    path = Path(daemon_json)
    if not path.is_file():
        return CheckResult(False, t("ex.engine.nofile", path=path.name))
    lab = _lab(lab)
    # Short and private: the engine's sockets live here (a unix socket path has ~100 bytes).
    run = Path(tempfile.mkdtemp(prefix="dl-"))
    engine = RootlessEngine(name="try", data_root=run / "data", run=run, logs=run,
                            binaries=_binaries(lab.config.docker_cli), start_timeout=timeout)
    try:
        engine.data_root.mkdir()
        shutil.copyfile(path, engine.config)  # the learner's file, byte for byte
        pid = proc.start(engine.argv(), engine.pidfile, engine.log, env=engine.env())
        try:  # ready, or dockerd gave up (RootlessKit exits with it): whichever comes first
            proc.wait_for(lambda: engine.socket.exists() and engine.ready(), timeout, "engine", pid=pid)
            started = True
        except proc.LabFailure:
            started = False
        log = engine.log.read_text(errors="replace")
        if started:
            version = engine_version(engine.host)
            return CheckResult(True, t("ex.engine.started", file=path.name, version=version))
        why = refusal(log).replace(str(engine.config), path.name) or (log.strip().splitlines() or ["?"])[-1]
        return CheckResult(False, t("ex.engine.refused", file=path.name, why=why[-200:]))
    finally:
        engine.destroy()
        shutil.rmtree(run, ignore_errors=True)


def engine_version(host: str) -> str:
    import docker

    client = docker.DockerClient(base_url=host, timeout=10)
    try:
        return str(client.version().get("Version", "?"))
    finally:
        client.close()


def _loopback_ports(lab: Any, daemon_json: Path) -> list[int]:
    """The host-loopback ports the engine should reach at the same address: the lab's registries and
    every ``127.0.0.1:PORT`` the file names as a mirror or an insecure registry (a cache of the
    learner's own, published on the host's loopback)."""
    addrs = [lab.config.mirror, getattr(lab.config, "upstream", ""), lab.config.registry]
    try:
        conf = json.loads(daemon_json.read_text())
        for key in ("registry-mirrors", "insecure-registries"):
            got = conf.get(key) if isinstance(conf, dict) else None
            addrs += [str(a).split("://")[-1].rstrip("/") for a in got or [] if isinstance(got, list)]
    except (OSError, ValueError):
        pass
    ports = set()
    for addr in addrs:
        host, _, port = (addr or "").rpartition(":")
        if host in ("127.0.0.1", "localhost") and port.isdigit() and 0 < int(port) < 65536:
            ports.add(int(port))
    return sorted(ports)


def _destroy(engine: Any, run: Path) -> None:
    engine.destroy()
    shutil.rmtree(run, ignore_errors=True)


_LIVE: weakref.WeakSet[OwnEngine] = weakref.WeakSet()


def running_engines() -> list[OwnEngine]:
    """The learner's own engines of this kernel that answer now (the checks read them, not a variable)."""
    return [e for e in list(_LIVE) if e.running]


def stop_all() -> int:
    """Stop every engine of the learner's own this kernel started (a chapter's last cell); how many."""
    engines = [e for e in list(_LIVE) if e._finalizer.alive]
    for e in engines:
        e.stop()
    return len(engines)


class OwnEngine:
    """A rootless engine of the learner's own that reads ``daemon_json`` and stays up until ``stop()``.

    ``restart()`` stops it and starts it again with the file as it is now (its images stay, as on a
    system's ``systemctl restart docker``). ``host`` is its address for ``docker -H``."""

    def __init__(self, daemon_json: str | Path, lab: Any = None, timeout: float = 60.0) -> None:
        from labengine.rootless import RootlessEngine

        from .check import _lab

        self.path = Path(daemon_json)
        self.lab = _lab(lab)
        self.timeout = timeout
        self.run = Path(tempfile.mkdtemp(prefix="dl-"))  # short and private (a unix socket path: ~100 bytes)
        self.engine = RootlessEngine(name="mine", data_root=self.run / "data", run=self.run, logs=self.run,
                                     binaries=_binaries(self.lab.config.docker_cli), start_timeout=timeout)
        self.engine.data_root.mkdir()
        self._finalizer = weakref.finalize(self, _destroy, self.engine, self.run)
        _LIVE.add(self)
        self.status = self.start()

    @property
    def host(self) -> str:
        return self.engine.host

    @property
    def running(self) -> bool:
        return self._finalizer.alive and bool(self.engine.pid()) and self.engine.ready()

    def mirrors(self) -> list[str]:
        """What ``docker info`` lists under Registry Mirrors (without the trailing slash)."""
        import docker

        client = docker.DockerClient(base_url=self.host, timeout=10)
        try:
            return [str(m).rstrip("/") for m in client.info()["RegistryConfig"].get("Mirrors") or []]
        finally:
            client.close()

    def start(self) -> CheckResult:
        """Start with the file as it is now: ✔ and the version, or ✘ with dockerd's own reason."""
        from labcore import proc

        if not self._finalizer.alive:
            return CheckResult(False, t("ex.engine.gone"))
        if not self.path.is_file():
            return CheckResult(False, t("ex.engine.nofile", path=self.path.name))
        e = self.engine
        shutil.copyfile(self.path, e.config)  # the learner's file, byte for byte
        e.socket.unlink(missing_ok=True)
        shutil.rmtree(e.state_dir, ignore_errors=True)
        start = e.log.stat().st_size if e.log.exists() else 0
        pid = proc.start(e.argv(), e.pidfile, e.log, env=e.env())
        try:
            proc.wait_for(lambda: e.socket.exists() and e.ready(), self.timeout, "engine", pid=pid)
        except proc.LabFailure:
            log = e.log.read_text(errors="replace")[start:]
            e.stop()
            why = refusal(log).replace(str(e.config), self.path.name) or (log.strip().splitlines() or ["?"])[-1]
            return CheckResult(False, t("ex.engine.refused", file=self.path.name, why=why[-200:]))
        os.chmod(e.socket, 0o600)
        ports = _loopback_ports(self.lab, self.path)
        if ports:
            e.forward(ports)
        return CheckResult(True, t("ex.engine.up", file=self.path.name, version=engine_version(e.host)))

    def restart(self) -> CheckResult:
        """Stop the engine and start it again: dockerd reads daemon.json only when it starts."""
        self.engine.stop()
        self.status = self.start()
        return self.status

    def stop(self) -> CheckResult:
        """Stop the engine and delete everything it had."""
        self._finalizer()
        return CheckResult(True, t("ex.engine.stopped"))

    def __enter__(self) -> OwnEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<OwnEngine {self.host} running={self.running}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        return self.status._repr_mimebundle_(include, exclude)  # the last start's ✔ or ✘
