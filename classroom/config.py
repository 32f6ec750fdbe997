"""What a classroom is, as every party reads it: root's ``asroot.classroom`` writes it, the Hub's
login and spawner, a member's progress probe and the progress page read it. Names, places and the
class's configuration (``classroom.json``: root-owned, world-readable, no secrets), and the Hub's
password hashing (the hashes live in a file only the hub account reads).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labcore.errors import LabFailure

__all__ = ["BASE", "CONFIG", "GROUP", "HUB", "INSTRUCTOR", "ClassConfig", "hub_host", "learner_names", "member_run",
           "tag", "verify"]

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
    # The Hub's host name: each member's server is served from an origin of its own, ``<name>.<host>``
    # (JupyterHub's ``subdomain_host``), so a page one member serves cannot act for another member or the
    # instructor in their browser. "localhost" on this machine (browsers resolve every ``*.localhost`` name
    # to loopback themselves); a room names a host whose ``*.<host>`` resolves to the Hub (wildcard DNS, or
    # one record per member). A URL (``https://hub.example.org``) where TLS sits in front. Empty: every
    # server on the Hub's one origin (``--single-origin``: only for members who trust each other).
    host: str = ""

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
    def subdomain_host(self) -> str:
        """JupyterHub's ``subdomain_host`` (``scheme://host[:port]``), or "" for one origin.

        >>> ClassConfig(host="localhost", port=8000).subdomain_host
        'http://localhost:8000'
        >>> ClassConfig(host="https://hub.example.org", port=8000).subdomain_host
        'https://hub.example.org'
        """
        if not self.host:
            return ""
        return self.host.rstrip("/") if "://" in self.host else f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Where the class opens the Hub."""
        return f"{self.subdomain_host or f'http://{self.ip}:{self.port}'}/"

    def server_url(self, name: str, kind: str = "user") -> str:
        """Where the Hub serves a member's server (``kind`` "user") or a service (``kind`` "service",
        e.g. the progress page): on its own origin with a host name, else on the Hub's.

        >>> ClassConfig(host="localhost", port=8000).server_url("learner1")
        'http://learner1.localhost:8000/user/learner1/'
        >>> ClassConfig(host="localhost", port=8000).server_url("progress", "service")
        'http://progress--service.localhost:8000/services/progress/'
        >>> ClassConfig(ip="127.0.0.1", port=8000).server_url("learner1")
        'http://127.0.0.1:8000/user/learner1/'
        """
        path = f"/{'user' if kind == 'user' else 'services'}/{name}/"
        if not self.host:
            return self.url.rstrip("/") + path
        from urllib.parse import urlsplit

        from jupyterhub.utils import subdomain_hook_idna  # the Hub's own naming (JupyterHub.subdomain_hook)

        parts = urlsplit(self.subdomain_host)
        domain = subdomain_hook_idna(name, parts.hostname, kind)
        return f"{parts.scheme}://{domain}{f':{parts.port}' if parts.port else ''}{path}"


def hub_host(ip: str, host: str | None) -> str:
    """The Hub's host name (``ClassConfig.host``): ``host`` as given ("" for one origin), else "localhost"
    for a Hub on this machine only; a Hub on a room's network needs a name its members resolve.

    >>> hub_host("127.0.0.1", None), hub_host("0.0.0.0", "hub.lab.example"), hub_host("0.0.0.0", "")
    ('localhost', 'hub.lab.example', '')
    """
    import ipaddress

    if host is not None:
        if host and not re.fullmatch(r"(https?://)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?/?", host.lower()):
            raise LabFailure(f"--host {host!r} is not a host name: give one like hub.school.example "
                             "(or https://hub.school.example with TLS in front).")
        return host.lower()
    try:
        local = ipaddress.ip_address(ip).is_loopback
    except ValueError:
        local = ip == "localhost"
    if local:
        return "localhost"
    raise LabFailure(f"A Hub on {ip} needs a host name its learners' browsers resolve, with every <name>.<host> "
                     "resolving to this machine too (wildcard DNS, or one record per member): add --host NAME "
                     "(or --single-origin, only for a class whose members trust each other).")


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
