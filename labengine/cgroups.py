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
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Delegated", "LabLimits", "delegate", "engine_limits", "enter", "hierarchy", "parent_name",
           "hand_over", "pids_below", "rmdir_retrying", "rmdir_tree", "rootless_driver", "systemd_running", "user_bus", "user_manager_dropin"]

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


def _bases(user: str, root: Path = ROOT) -> list[Path]:
    if hierarchy(root) == "v2":
        return [root / parent_name(user)]
    return [root / c / parent_name(user) for c in V1_CONTROLLERS]


def delegate(user: str, limits: LabLimits, root: Path = ROOT, systemd: bool | None = None) -> list[Path]:
    """Root, once: make the account's cgroup, set its limits, hand it over. Returns its directories.

    ``systemd``: on cgroup v2 under systemd, through the account's user manager (the lab's account:
    its engine then gets the systemd driver). False: a cgroup of root's own making there too, as without
    systemd — a classroom member, who must get no user manager (it would run outside their network
    namespace and their limits). None: whatever the machine offers."""
    pw = pwd.getpwnam(user)
    kind = hierarchy(root)
    if not kind:
        return []
    if kind == "v2" and root == ROOT and (systemd_running() if systemd is None else systemd):
        return [_delegate_systemd(pw, limits, root)]
    bases = _bases(user, root)
    for base in bases:
        base.mkdir(exist_ok=True)
    if kind == "v1":
        _v1_memory(root / "memory" / parent_name(user), limits.memory_mb << 20)
        _write(root / "pids" / parent_name(user) / "pids.max", limits.pids)
        _write(root / "cpu" / parent_name(user) / "cpu.shares", limits.cpu_weight * 1024 // 100)
        owned: tuple[str, ...] = DELEGATED_V1
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
        owned = DELEGATED_V2
    hand_over(bases, pw.pw_uid, pw.pw_gid, owned)
    if kind == "v2":
        hand_over([base / "session" for base in bases], pw.pw_uid, pw.pw_gid, DELEGATED_V2)
    return bases


def hand_over(dirs: list[Path], uid: int, gid: int, files: tuple[str, ...] = DELEGATED_V2) -> None:
    """Root: these cgroups' ``files`` (``""``: the directory) that exist become the account's."""
    for d in dirs:
        for rel in files:
            if (d / rel).exists():
                os.chown(d / rel, uid, gid)


# --- cgroup v2 with systemd: the account's user manager --------------------------------------------
SYSTEMD_SYSTEM = Path("/etc/systemd/system")
DBUS_USER_SOCKET = Path("/usr/lib/systemd/user/dbus.socket")  # what dbus-user-session installs
DROPIN = """\
# Written by Docker Lab's one-time root step (labengine.cgroups). The account's systemd user manager gets
# the controllers a rootless engine needs to limit containers (docker run -m, --pids-limit, --cpus),
# and the lab's limits for everything it runs under that manager.
[Service]
Delegate=cpu cpuset io memory pids
MemoryMax={memory}
MemorySwapMax=0
TasksMax={pids}
CPUWeight={cpu_weight}
"""


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


def user_manager_dropin(uid: int) -> Path:
    return SYSTEMD_SYSTEM / f"user@{uid}.service.d" / "dockerlab.conf"


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120, check=False)


def _delegate_systemd(pw: pwd.struct_passwd, limits: LabLimits, root: Path = ROOT) -> Path:
    """Root, once, on cgroup v2 under systemd: the drop-in, lingering, the manager and its bus running."""
    from labcore.errors import LabFailure

    if not DBUS_USER_SOCKET.exists():
        raise LabFailure("The account's systemd user manager has no session bus, which the engine's cgroup "
                         "driver needs to limit containers: install dbus-user-session (apt-get install "
                         "dbus-user-session), then run ./lab setup again.")
    dropin = user_manager_dropin(pw.pw_uid)
    text = DROPIN.format(memory=limits.memory_mb << 20, pids=limits.pids, cpu_weight=limits.cpu_weight)
    if not dropin.exists() or dropin.read_text() != text:
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(text)
        _systemctl("daemon-reload")  # also applies the limits to a manager that already runs
    # Lingering: the manager (and the engine under it) runs without a login session, as for a service.
    linger = subprocess.run(["loginctl", "enable-linger", pw.pw_name], capture_output=True, text=True,
                            timeout=60, check=False)
    started = _systemctl("start", f"user@{pw.pw_uid}.service")
    deadline = time.monotonic() + 90
    while user_bus(pw.pw_uid) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if user_bus(pw.pw_uid) is None:
        why = (started.stderr or linger.stderr).strip().splitlines()
        raise LabFailure(f"The systemd user manager of {pw.pw_name} did not start"
                         f" ({why[-1][:120] if why else 'no session bus at /run/user/' + str(pw.pw_uid) + '/bus'}):"
                         f" check 'systemctl status user@{pw.pw_uid}.service', then run ./lab setup again.")
    return root / "user.slice" / f"user-{pw.pw_uid}.slice" / f"user@{pw.pw_uid}.service"


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
    for base in _bases(user, root):
        target = base / "session" if hierarchy(root) == "v2" else base
        if target.is_dir():
            _write(target / "cgroup.procs", pid)
            entered = True
    if strict and hierarchy(root) and not entered:
        raise FileNotFoundError(2, "no cgroup was made for this account", str(_bases(user, root)[0]))


def _write(path: Path, value: object) -> None:
    path.write_text(str(value))


def _v1_memory(d: Path, limit: int) -> None:
    """v1's memory limit, and the same for memory + swap where the kernel accounts swap (as v2's
    ``memory.swap.max`` 0): a hog meets its limit instead of pushing the machine into swap. The kernel
    keeps memsw >= memory at every step, so the order depends on the direction of the change."""
    memsw = d / "memory.memsw.limit_in_bytes"
    if not memsw.exists():
        _write(d / "memory.limit_in_bytes", limit)
        return
    try:
        _write(d / "memory.limit_in_bytes", limit)
        _write(memsw, limit)
    except OSError:  # raising: memsw first
        _write(memsw, limit)
        _write(d / "memory.limit_in_bytes", limit)


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
