"""Where the lab keeps its files, and the state file that tells everyone else where things run.

``LAB_HOME`` (default ``<repo>/.lab``) holds data that must survive a restart (engine data root,
registry storage, image build cache). Sockets and pid files live under ``/run/dockerlab-<id>``:
unix socket paths must stay short, and /run is emptied on reboot, as pid files should be.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["REPO", "LabPaths", "State", "load_state", "paths", "save_state"]

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LabPaths:
    home: Path
    run: Path

    @property
    def state_file(self) -> Path:
        return self.home / "state.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def ensure(self) -> None:
        for d in (self.home, self.logs, self.run):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run, 0o755)


def paths() -> LabPaths:
    home = Path(os.environ.get("LAB_HOME", REPO / ".lab")).resolve()
    tag = hashlib.sha256(str(home).encode()).hexdigest()[:6]
    return LabPaths(home=home, run=Path(f"/run/dockerlab-{tag}"))


@dataclass
class State:
    """What ``./lab up`` started; written to ``state.json``, read by kernel_ext and the tests."""

    engine: str = "lab"  # "lab" (ours) or "existing" (the user's DOCKER_HOST)
    docker_host: str = ""
    docker_cli: str = "/usr/bin/docker"
    upstream: str = ""  # host:port of the registry that plays Docker Hub
    mirror: str = ""  # host:port of the pull-through cache the engine uses
    bridge: str = ""
    subnet: str = ""
    jupyter_url: str = ""
    images: dict[str, str] = field(default_factory=dict)  # "name:tag" -> content hash

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def load_state(p: LabPaths | None = None) -> State:
    p = p or paths()
    try:
        data = json.loads(p.state_file.read_text())
    except (OSError, ValueError):
        return State()
    known = set(State.__dataclass_fields__)
    return State(**{k: v for k, v in data.items() if k in known})


def save_state(state: State, p: LabPaths | None = None) -> None:
    p = p or paths()
    p.home.mkdir(parents=True, exist_ok=True)
    tmp = p.state_file.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.chmod(tmp, 0o644)
    tmp.replace(p.state_file)
