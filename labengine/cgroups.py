"""The lab's cgroup as the account uses it (root makes and delegates it: ``asroot.cgroups``).

Both hierarchies:

* **cgroup v1** (this project's CI machines): root makes ``/sys/fs/cgroup/<c>/dockerlab-<user>``
  for ``memory``, ``pids`` and ``cpu``, sets the limits there, and hands the directory to the
  account. The account makes one child per engine and moves the engine's tree into it: the whole
  rootless engine (and every container, which runs under it) is limited together. Per-container
  limits (``docker run -m``) cannot work rootless on v1; ``./lab doctor`` says so.
* **cgroup v2** (Debian 12 and Ubuntu 22.04+ by default): root makes ``/sys/fs/cgroup/dockerlab-<user>``
  with ``memory.max``, ``memory.swap.max``, ``pids.max`` and ``cpu.weight``, enables the controllers
  for its children and delegates the subtree (directory, ``cgroup.procs``, ``cgroup.subtree_control``,
  ``cgroup.threads``) as systemd does for a user session, so a rootless engine can limit containers.
"""

from __future__ import annotations

import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DELEGATED_V1", "DELEGATED_V2", "ROOT", "V1_CONTROLLERS", "V2_CONTROLLERS", "Delegated", "LabLimits",
           "bases", "engine_limits", "enter", "hierarchy", "parent_name", "pids_below", "rmdir_retrying",
           "read", "rmdir_tree", "rootless_driver", "systemd_running", "user_bus", "write"]

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
V2_CONTROLLERS = ("memory", "pids", "cpu", "io")
# What an account may write in a cgroup root made for it, and nothing else (every limit stays root's):
# v2, the directory and the files of a systemd delegation; v1, the directory and the files that move
# processes. The lab's cgroup (delegate) and a grading sandbox's (asroot.grading.sandbox) both hand over
# through hand_over.
DELEGATED_V2 = ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads")
DELEGATED_V1 = ("", "cgroup.procs", "tasks")


def hierarchy(root: Path = ROOT) -> str:
    """``"v2"`` (unified), ``"v1"`` (legacy or hybrid) or ``""`` (no cgroup file system)."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "memory").is_dir() or (root / "pids").is_dir():
        return "v1"
    return ""


def parent_name(user: str) -> str:
    return f"dockerlab-{user}"


@dataclass(frozen=True)
class LabLimits:
    """Limits for everything one account's lab runs (engine, containers, JupyterLab, kernels)."""

    memory_mb: int
    pids: int = 8192
    cpu_weight: int = 100  # v2 cpu.weight; v1 cpu.shares = weight * 1024 / 100

    @classmethod
    def default(cls) -> LabLimits:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return cls(memory_mb=int(total * 0.6) >> 20)


def bases(user: str, root: Path = ROOT) -> list[Path]:
    if hierarchy(root) == "v2":
        return [root / parent_name(user)]
    return [root / c / parent_name(user) for c in V1_CONTROLLERS]


def systemd_running() -> bool:
    """True when systemd is the init system (the test of sd_booted(3))."""
    return Path("/run/systemd/system").is_dir()


def user_bus(uid: int | None = None) -> Path | None:
    """The account's session bus socket, when its systemd user manager runs with dbus-user-session."""
    uid = os.getuid() if uid is None else uid
    run = Path(f"/run/user/{uid}")
    bus = run / "bus"
    return bus if bus.is_socket() and (run / "systemd" / "private").exists() else None


def rootless_driver(uid: int | None = None, root: Path = ROOT) -> str:
    """The cgroup driver a rootless engine of this account can use: ``"systemd"`` on cgroup v2 with
    the account's systemd user manager reachable, else ``"none"`` (no per-container limits)."""
    ok = hierarchy(root) == "v2" and systemd_running() and user_bus(uid) is not None
    return "systemd" if ok else "none"


def engine_limits(pid: int, root: Path = ROOT) -> tuple[str, int | None]:
    """The cgroup ``pid`` runs in and the tightest memory limit on its way to the root (None: none).

    >>> engine_limits(os.getpid())   # doctest: +SKIP
    ('/user.slice/user-1000.slice/user@1000.service/app.slice/dockerlab-1f2e3d-lab.scope', 15032385536)
    """
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return "", None
    v2 = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
    v1 = next((ln.split(":", 2)[2] for ln in lines if ln.split(":", 2)[1:2] and
               "memory" in ln.split(":", 2)[1].split(",")), None)
    if hierarchy(root) == "v2" and v2 is not None:
        rel, base, name = v2, root, "memory.max"
    elif v1 is not None:
        rel, base, name = v1, root / "memory", "memory.limit_in_bytes"
    else:
        return "", None
    best: int | None = None
    d = base / rel.lstrip("/")
    while True:
        try:
            value = (d / name).read_text().strip()
            if value != "max" and int(value) < (1 << 62):  # v1 says "no limit" with a huge number
                best = int(value) if best is None else min(best, int(value))
        except (OSError, ValueError):
            pass
        if d == base or base not in d.parents:
            break
        d = d.parent
    return rel, best


def enter(user: str, pid: int | None = None, root: Path = ROOT, strict: bool = False) -> None:
    """Root: move ``pid`` (default: this process) into the account's cgroup before dropping to it,
    so everything the lab starts is inside (on v2, moving later would need the root cgroup).
    ``strict``: an account that must be limited (a classroom member) and has no cgroup is an error,
    not a silent nothing."""
    pid = pid or os.getpid()
    entered = False
    for base in bases(user, root):
        target = base / "session" if hierarchy(root) == "v2" else base
        if target.is_dir():
            write(target / "cgroup.procs", pid)
            entered = True
    if strict and hierarchy(root) and not entered:
        raise FileNotFoundError(2, "no cgroup was made for this account", str(bases(user, root)[0]))


def write(path: Path, value: object) -> None:
    """A cgroup knob's new value (the one way this project writes a cgroup file)."""
    path.write_text(str(value))


def read(path: Path) -> str:
    """A cgroup file's text (the one way this project reads a cgroup file it may also write)."""
    return path.read_text()


@dataclass(frozen=True)
class Delegated:
    """A child cgroup of the account's delegated one, for one engine (made by the account)."""

    bases: tuple[Path, ...]
    name: str

    @classmethod
    def for_engine(cls, name: str, root: Path = ROOT) -> Delegated | None:
        """None when no cgroup was delegated to this account (``./lab doctor`` says what that means)."""
        user = pwd.getpwuid(os.getuid()).pw_name
        mine = tuple(b for b in bases(user, root) if b.is_dir() and os.access(b, os.W_OK))
        if not mine or os.getuid() == 0:
            return None
        return cls(mine, name)

    def dirs(self) -> list[Path]:
        return [b / self.name for b in self.bases]

    def create(self) -> None:
        for d in self.dirs():
            d.mkdir(exist_ok=True)

    def join_self(self) -> None:
        """Runs in the child between fork and exec: the engine starts inside its cgroup."""
        for d in self.dirs():
            try:
                (d / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                pass  # v2 without a writable common ancestor: the engine runs unlimited (doctor says)

    def pids(self) -> set[int]:
        return pids_below(self.dirs())

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process of this account left in the cgroup, until none is."""
        import signal

        deadline = time.monotonic() + timeout
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        for d in self.dirs():
            rmdir_tree(d)


def pids_below(tops: list[Path]) -> set[int]:
    """Every process in these cgroups and the cgroups below them (the engine's, a grading sandbox's)."""
    found: set[int] = set()
    for top in tops:
        for procs in top.rglob("cgroup.procs") if top.exists() else []:
            try:
                found.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                pass
    return found


def rmdir_tree(top: Path) -> None:
    """Remove a cgroup and every cgroup below it, deepest first (a cgroup goes only when empty)."""
    if not top.is_dir():
        return
    for sub in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        rmdir_retrying(sub)
    rmdir_retrying(top)


def rmdir_retrying(d: Path) -> None:
    """rmdir a cgroup, retrying while it is busy for a moment after its last process died."""
    for _ in range(20):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # busy for a moment after its last process died
            time.sleep(0.05)
