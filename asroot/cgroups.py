"""Root's part of the lab's cgroups: make an account's cgroup, set its limits and delegate it, once
(``./lab setup``, ``classroom up``/``add``). The account's part (its engines' child cgroups, entering
its own cgroup, reading limits) is ``labengine.cgroups``; the two hierarchies are described there.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

from labcore import safefs
from labcore.errors import LabFailure
from labengine.cgroups import (DELEGATED_V1, DELEGATED_V2, ROOT, V2_CONTROLLERS, LabLimits, bases, hierarchy,
                               parent_name, read, systemd_running, user_bus, write)

__all__ = ["DROPIN", "delegate", "hand_over", "user_manager_dropin"]


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
    found = bases(user, root)
    for base in found:
        base.mkdir(exist_ok=True)
    if kind == "v1":
        _v1_memory(root / "memory" / parent_name(user), limits.memory_mb << 20)
        write(root / "pids" / parent_name(user) / "pids.max", limits.pids)
        write(root / "cpu" / parent_name(user) / "cpu.shares", limits.cpu_weight * 1024 // 100)
        owned: tuple[str, ...] = DELEGATED_V1
    else:
        base = found[0]
        have = read(root / "cgroup.controllers").split()
        wanted = [c for c in V2_CONTROLLERS if c in have]
        write(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        write(base / "memory.max", limits.memory_mb << 20)
        write(base / "memory.swap.max", 0)
        write(base / "pids.max", limits.pids)
        write(base / "cpu.weight", limits.cpu_weight)
        # A cgroup with controllers enabled for its children may hold no process itself ("no internal
        # processes"): the session lives in a leaf, and the account adds more leaves (its engines).
        (base / "session").mkdir(exist_ok=True)
        write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        owned = DELEGATED_V2
    hand_over(found, pw.pw_uid, pw.pw_gid, owned)
    if kind == "v2":
        hand_over([base / "session" for base in found], pw.pw_uid, pw.pw_gid, DELEGATED_V2)
    return found


def hand_over(dirs: list[Path], uid: int, gid: int, files: tuple[str, ...] = DELEGATED_V2) -> None:
    """Root: these cgroups' ``files`` (``""``: the directory) that exist become the account's: the one rule
    for what an account gets of a cgroup root made (the lab's, a class member's, a grading sandbox's)."""
    for d in dirs:
        for rel in files:
            if (d / rel).exists():
                os.chown(d / rel, uid, gid)


# --- cgroup v2 with systemd: the account's user manager --------------------------------------------
SYSTEMD_SYSTEM = Path("/etc/systemd/system")
DBUS_USER_SOCKET = Path("/usr/lib/systemd/user/dbus.socket")  # what dbus-user-session installs
DROPIN = """\
# Written by Docker Lab's one-time root step (asroot.cgroups). The account's systemd user manager gets
# the controllers a rootless engine needs to limit containers (docker run -m, --pids-limit, --cpus),
# and the lab's limits for everything it runs under that manager.
[Service]
Delegate=cpu cpuset io memory pids
MemoryMax={memory}
MemorySwapMax=0
TasksMax={pids}
CPUWeight={cpu_weight}
"""


def user_manager_dropin(uid: int) -> Path:
    return SYSTEMD_SYSTEM / f"user@{uid}.service.d" / "dockerlab.conf"


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120, check=False)


def _delegate_systemd(pw: pwd.struct_passwd, limits: LabLimits, root: Path = ROOT) -> Path:
    """Root, once, on cgroup v2 under systemd: the drop-in, lingering, the manager and its bus running."""
    if not DBUS_USER_SOCKET.exists():
        raise LabFailure("The account's systemd user manager has no session bus, which the engine's cgroup "
                         "driver needs to limit containers: install dbus-user-session (apt-get install "
                         "dbus-user-session), then run ./lab setup again.")
    dropin = user_manager_dropin(pw.pw_uid)
    text = DROPIN.format(memory=limits.memory_mb << 20, pids=limits.pids, cpu_weight=limits.cpu_weight)
    if not dropin.exists() or safefs.read_private(dropin).decode() != text:
        dropin.parent.mkdir(parents=True, exist_ok=True)
        safefs.write_private(dropin, text, mode=0o644)
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


def _v1_memory(d: Path, limit: int) -> None:
    """v1's memory limit, and the same for memory + swap where the kernel accounts swap (as v2's
    ``memory.swap.max`` 0): a hog meets its limit instead of pushing the machine into swap. The kernel
    keeps memsw >= memory at every step, so the order depends on the direction of the change."""
    memsw = d / "memory.memsw.limit_in_bytes"
    if not memsw.exists():
        write(d / "memory.limit_in_bytes", limit)
        return
    try:
        write(d / "memory.limit_in_bytes", limit)
        write(memsw, limit)
    except OSError:  # raising: memsw first
        write(memsw, limit)
        write(d / "memory.limit_in_bytes", limit)
