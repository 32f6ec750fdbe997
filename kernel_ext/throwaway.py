"""Start a throwaway rootless Docker Engine with a daemon.json, to see whether dockerd accepts it.

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

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .check import CheckResult
from .messages import t

__all__ = ["refusal", "start_engine"]

_REFUSED = re.compile(r"unable to configure the Docker daemon[^\n]*")


def refusal(log: str) -> str:
    """The line in dockerd's output that says why it refused its configuration ("" if none does)."""
    found = _REFUSED.findall(log)
    return found[-1].strip() if found else ""


def _binaries(docker_cli: str) -> Any:
    from labctl.enginepkgs import EngineBinaries

    cli = Path(docker_cli)
    root = "/" if cli == Path("/usr/bin/docker") else str(cli.parents[2])
    return EngineBinaries(root=root, version="", source="", packages={})


def start_engine(daemon_json: str | Path, lab: Any = None, timeout: float = 60.0) -> CheckResult:
    """Start a throwaway engine with ``daemon_json``: ✔ when it came up and answered, ✘ with dockerd's
    own reason when it refused to start. Either way nothing of it is left afterwards."""
    from labctl import proc
    from labctl.rootless import RootlessEngine

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
