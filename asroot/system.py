"""The one-time system step (root): what a rootless lab needs from the machine, done once.

``sudo ./lab setup [--user NAME]`` (or ``./lab up`` run as root, for the lab's own account
``dockerlab``): the account (with a subordinate uid/gid range), ``/dev/net/tun`` usable by ordinary
accounts (mode 0666, as on stock Debian), a delegated cgroup with the lab's limits (under systemd on
cgroup v2: the account's systemd user manager, lingering, with the controllers and the limits; see
``cgroups``), and the lab's home owned by the account. Nothing else runs as root afterwards.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from asroot import accounts
from asroot import cgroups as rootcg
from labengine import cgroups
from labcore import safefs
from labcore.errors import LabFailure
from labcore.state import REPO
from labcore.subids import subid_range
from labcore.subids import uid_of as _uid

__all__ = ["LAB_ACCOUNT", "SOLUTIONS", "check_userns", "ensure_account", "prepare", "protect_solutions", "subid_range"]

LAB_ACCOUNT = "dockerlab"
# the labs' solutions and hidden tests (nbgrader's source, its MyST twins), sample submissions with
# answers, and the clone's git history (every one of them, one `git show` away): the lab's account reads
# them (its JupyterLab, its test suite), no other account does — class members run from a release
# (asroot.classroom.publish_code), never from the clone
SOLUTIONS = (REPO / "labs" / "source", REPO / "labs" / "src", REPO / "tests" / "labs_submissions", REPO / ".git")


def ensure_account(user: str, home: Path | None = None) -> pwd.struct_passwd:
    """Create ``user`` (no login shell, private home) unless it exists; give it a subuid/subgid range."""
    return accounts.ensure_account(user, comment="Docker Lab", home=home or Path("/var/lib") / user)[0]


def check_userns() -> None:
    """Ordinary accounts must be able to make user namespaces (rootless engines are built on them)."""
    knob = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if knob.exists() and safefs.read_kernel(knob).strip() == "0":
        raise LabFailure("This kernel forbids user namespaces for ordinary accounts: run "
                         "'sysctl -w kernel.unprivileged_userns_clone=1' (and add it to /etc/sysctl.d/), "
                         "then run ./lab setup again.")
    apparmor = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    if (apparmor.exists() and safefs.read_kernel(apparmor).strip() == "1"
            and not Path("/etc/apparmor.d/dockerlab-rootlesskit").exists()):
        raise LabFailure("AppArmor restricts user namespaces (Ubuntu 24.04+): add a profile that allows "
                         "'userns' for rootlesskit (see Docker's rootless guide) or run "
                         "'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0', then run ./lab setup again.")


def _tun() -> bool:
    """/dev/net/tun usable by ordinary accounts (slirp4netns opens it). True if changed now."""
    tun = Path("/dev/net/tun")
    if not tun.exists():
        raise LabFailure("/dev/net/tun is missing: load the tun module ('modprobe tun'), then run ./lab setup again.")
    mode = stat.S_IMODE(tun.stat().st_mode)
    if mode & 0o006 == 0o006:
        return False
    os.chmod(tun, 0o666)
    return True


def protect_solutions(user: str) -> bool:
    """:data:`SOLUTIONS` 0750, group ``user``'s (the owner unchanged: the clone's author keeps writing
    them). True if something changed."""
    gid = pwd.getpwnam(user).pw_gid
    changed = False
    for d in SOLUTIONS:
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_gid != gid:
            os.chown(d, -1, gid)
            changed = True
        if stat.S_IMODE(st.st_mode) != 0o750:
            os.chmod(d, 0o750)
            changed = True
    return changed


def prepare(user: str, lab_home: Path, create: bool) -> list[str]:
    """Everything root does, once. Returns what changed, for the one line ``./lab`` prints."""
    if os.geteuid() != 0:
        raise LabFailure("The one-time system step needs root: run 'sudo ./lab setup'.")
    changed = []
    existed = _uid(user) >= 0
    if not existed and not create:
        raise LabFailure(f"There is no account {user}: create it first (adduser {user}).")
    had_range = subid_range(user) is not None
    pw = ensure_account(user)
    if not existed:
        changed.append(f"account {user}")
    if not had_range:
        changed.append("subuid/subgid range")
    check_userns()
    if _tun():
        changed.append("/dev/net/tun 0666")
    if protect_solutions(user):
        changed.append(f"the labs' solutions readable by {user} only")
    made = rootcg.delegate(user, cgroups.LabLimits.default())
    if made and made[0].name.startswith("user@"):  # cgroup v2 under systemd: the account's user manager
        changed.append(f"{made[0].name} with the lab's limits and lingering (cgroup v2, systemd driver)")
    elif made:
        changed.append(f"cgroup {cgroups.parent_name(user)} ({cgroups.hierarchy()})")
    lab_home.mkdir(parents=True, exist_ok=True)
    os.chown(lab_home, pw.pw_uid, pw.pw_gid)
    os.chmod(lab_home, 0o700)
    probe = subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(REPO / "labctl" / "__init__.py")],
                           capture_output=True)
    if probe.returncode != 0:
        raise LabFailure(f"The account {user} cannot read the course in {REPO}: put the course where "
                         "ordinary accounts can read it (e.g. /srv or /opt), then run ./lab again.")
    return changed
