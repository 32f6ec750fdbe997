"""The lab's cgroup: made and delegated once by root, used by the lab's account without root.

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

__all__ = ["ROOT", "Delegated", "LabLimits", "delegate", "enter", "hierarchy", "parent_name", "rmdir_retrying"]

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
V2_CONTROLLERS = ("memory", "pids", "cpu", "io")


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


def _bases(user: str, root: Path = ROOT) -> list[Path]:
    if hierarchy(root) == "v2":
        return [root / parent_name(user)]
    return [root / c / parent_name(user) for c in V1_CONTROLLERS]


def delegate(user: str, limits: LabLimits, root: Path = ROOT) -> list[Path]:
    """Root, once: make the account's cgroup, set its limits, hand it over. Returns its directories."""
    pw = pwd.getpwnam(user)
    kind = hierarchy(root)
    if not kind:
        return []
    bases = _bases(user, root)
    for base in bases:
        base.mkdir(exist_ok=True)
    if kind == "v1":
        _write(root / "memory" / parent_name(user) / "memory.limit_in_bytes", limits.memory_mb << 20)
        _write(root / "pids" / parent_name(user) / "pids.max", limits.pids)
        _write(root / "cpu" / parent_name(user) / "cpu.shares", limits.cpu_weight * 1024 // 100)
        owned = ["", "cgroup.procs", "tasks"]
    else:
        base = bases[0]
        have = (root / "cgroup.controllers").read_text().split()
        wanted = [c for c in V2_CONTROLLERS if c in have]
        _write(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        _write(base / "memory.max", limits.memory_mb << 20)
        _write(base / "memory.swap.max", 0)
        _write(base / "pids.max", limits.pids)
        _write(base / "cpu.weight", limits.cpu_weight)
        # A cgroup with controllers enabled for its children may hold no process itself ("no internal
        # processes"): the session lives in a leaf, and the account adds more leaves (its engines).
        (base / "session").mkdir(exist_ok=True)
        _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        owned = ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
    for base in bases:
        for rel in owned:
            if (base / rel).exists():
                os.chown(base / rel, pw.pw_uid, pw.pw_gid)
        if kind == "v2":
            for rel in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
                os.chown(base / "session" / rel, pw.pw_uid, pw.pw_gid)
    return bases


def enter(user: str, pid: int | None = None, root: Path = ROOT) -> None:
    """Root: move ``pid`` (default: this process) into the account's cgroup before dropping to it,
    so everything the lab starts is inside (on v2, moving later would need the root cgroup)."""
    pid = pid or os.getpid()
    for base in _bases(user, root):
        target = base / "session" if hierarchy(root) == "v2" else base
        if target.is_dir():
            _write(target / "cgroup.procs", pid)


def _write(path: Path, value: object) -> None:
    path.write_text(str(value))


@dataclass(frozen=True)
class Delegated:
    """A child cgroup of the account's delegated one, for one engine (made by the account)."""

    bases: tuple[Path, ...]
    name: str

    @classmethod
    def for_engine(cls, name: str, root: Path = ROOT) -> Delegated | None:
        """None when no cgroup was delegated to this account (``./lab doctor`` says what that means)."""
        user = pwd.getpwuid(os.getuid()).pw_name
        bases = tuple(b for b in _bases(user, root) if b.is_dir() and os.access(b, os.W_OK))
        if not bases or os.getuid() == 0:
            return None
        return cls(bases, name)

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
        found: set[int] = set()
        for d in self.dirs():
            for procs in d.rglob("cgroup.procs") if d.exists() else []:
                try:
                    found.update(int(x) for x in procs.read_text().split())
                except OSError:
                    pass
        return found

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
            if not d.exists():
                continue
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                rmdir_retrying(sub)
            rmdir_retrying(d)


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
