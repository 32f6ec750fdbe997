"""Where the lab keeps its files, and the state file that tells everyone else where things run.

``LAB_HOME`` (default ``<repo>/.lab``, mode 0700, owned by the lab's account) holds data that must
survive a restart (engine data root, registry storage, JupyterLab's config, the learner's copy of
the notebooks). Sockets and pid files live in a private run directory: ``$XDG_RUNTIME_DIR/dockerlab-<id>``
when the account has one, else ``/tmp/dockerlab-<uid>-<id>`` (0700, refused if another account made
it): unix socket paths must stay short, and both are emptied on reboot, as pid files should be. A
classroom member's ``XDG_RUNTIME_DIR`` is the one root's gate made for them
(``asroot.classroom_enter.member_run``: ``/run/<classroom>/<uid>``), so nobody can take theirs in
``/tmp`` first; their server and their progress reader both use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labcore.safefs import private_dir

__all__ = ["REPO", "LabPaths", "State", "load_state", "paths", "save_state"]

REPO = Path(__file__).resolve().parent.parent
GRADE_BASE = Path("/var/lib/dockerlab-grade")  # root's grading: the pool's homes, root's course, control files


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

    @property
    def jupyter(self) -> Path:
        return self.home / "jupyter"

    @property
    def course(self) -> Path:
        """The learner's copy of the course (JupyterLab's root): theirs to edit and save."""
        return self.home / "course"

    def ensure(self) -> None:
        for d in (self.home, self.logs, self.run):
            private_dir(d)


def paths() -> LabPaths:
    home = Path(os.environ.get("LAB_HOME", REPO / ".lab")).resolve()
    tag = hashlib.sha256(str(home).encode()).hexdigest()[:6]
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg) and os.stat(xdg).st_uid == os.getuid() and len(xdg) < 40:
        run = Path(xdg) / f"dockerlab-{tag}"
    else:
        run = Path(f"/tmp/dockerlab-{os.getuid()}-{tag}")
    return LabPaths(home=home, run=run)


@dataclass
class State:
    """What ``./lab up`` started; written to ``state.json``, read by kernel_ext and the tests."""

    engine: str = "lab"  # "lab" (ours) or "existing" (the user's DOCKER_HOST)
    docker_host: str = ""
    docker_cli: str = "/usr/bin/docker"
    upstream: str = ""  # host:port of the registry that plays Docker Hub (read-only)
    mirror: str = ""  # host:port of the pull-through cache the engine uses
    registry: str = ""  # host:port of the learner's own registry (pushes go here)
    publisher: str = ""  # unix:// socket: the course's writable view of the upstream
    engine_version: str = ""  # e.g. "28.5.2+dfsg4-5"
    engine_source: str = ""  # e.g. "Debian unstable (pinned)"
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
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the URL in it carries the token
    with open(fd, "w") as f:
        f.write(state.to_json())
    tmp.replace(p.state_file)
