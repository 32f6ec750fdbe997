"""What a classroom is, as every party reads it: root's ``asroot.classroom`` writes it, the Hub's
login and spawner, a member's progress probe and the progress page read it. Names, places and the
class's configuration (``classroom.json``: root-owned, world-readable, no secrets), and the Hub's
password hashing (the hashes live in a file only the hub account reads).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labcore.errors import LabFailure

__all__ = ["BASE", "CONFIG", "GROUP", "HUB", "INSTRUCTOR", "ClassConfig", "learner_names", "member_run", "tag",
           "verify"]

# LAB_CLASSROOM_TAG gives the tests a classroom of their own (its own directory, hub account, group
# and sudo rule), never the instructor's.
_TAG = os.environ.get("LAB_CLASSROOM_TAG", "")


def tag() -> str:
    return _TAG

BASE = Path(f"/var/lib/dockerlab-classroom{'-' + _TAG if _TAG else ''}")
HUB = f"dlhub{_TAG}"
GROUP = f"dockerlab-class{_TAG}"
INSTRUCTOR = "instructor"
COMMENT = "Docker Lab classroom"
PROXY_VERSION = "5.3.0"  # configurable-http-proxy from npm
HUB_DIR = BASE / "hub"
CONFIG = BASE / "classroom.json"
VENV_BIN = Path(sys.executable).parent


@dataclass
class ClassConfig:
    """What ``classroom up`` set up; root-owned, world-readable (no secrets in it)."""

    learners: list[str] = field(default_factory=list)
    instructor: str = INSTRUCTOR
    ip: str = "127.0.0.1"
    port: int = 8000
    mirror: str = ""  # 127.0.0.1:PORT of the read-only course mirror
    engine_root: str = ""  # root-owned, read-only engine packages every account runs
    engine_version: str = ""
    memory_mb: int = 1536  # per learner: engine, containers, JupyterLab, kernels together
    pids: int = 2048
    inner_ports: list[int] = field(default_factory=list)  # the Hub's own API, the proxy's API, the progress page
    member_ports: dict[str, int] = field(default_factory=dict)  # host side of the relay to each member's server

    def save(self) -> None:
        CONFIG.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        os.chmod(CONFIG, 0o644)

    @classmethod
    def load(cls) -> ClassConfig:
        try:
            data = json.loads(CONFIG.read_text())
        except (OSError, ValueError):
            raise LabFailure("There is no classroom on this machine: "
                             "run 'sudo ./lab classroom up --learners N'.") from None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}/"


def learner_names(n: int) -> list[str]:
    return [f"learner{i}" for i in range(1, n + 1)]


PASSWORDS = HUB_DIR / "passwords.json"


def _hash(password: str, salt: bytes | None = None) -> str:
    import hashlib

    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify(password: str, stored: str) -> bool:
    """``stored`` as written by this module (``scrypt$salt$digest``).

    >>> verify("s3cret", _hash("s3cret")), verify("guess", _hash("s3cret"))
    (True, False)
    """
    import hmac

    try:
        kind, salt, _ = stored.split("$")
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(_hash(password, bytes.fromhex(salt)), stored)


CODE = BASE / "code"  # the course as class members run it: root's release (asroot.classroom.publish_code)
SERVER = BASE / "bin" / "dockerlab-server"  # a member's server: classroom.server, then JupyterLab
ENTER = BASE / "bin" / "dockerlab-enter"  # root's gate: the hub's one sudo rule (asroot.classroom_enter)

RUN_ROOT = Path("/run") / BASE.name  # root's, 0711; one directory per member in it (short: sockets go there)


def member_run(uid: int, root: Path = RUN_ROOT) -> Path:
    """The member's ``XDG_RUNTIME_DIR`` (their server's and their progress reader's run directory)."""
    return root / str(uid)
