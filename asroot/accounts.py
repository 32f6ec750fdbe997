"""Root: the project's one way to make an account and give it a subordinate uid/gid range.

Every account the project makes goes through :func:`ensure_account`: the lab's own (``dockerlab``,
``asroot.system``), the grading pool (``dlgrade1`` …, ``asroot.gradeaccounts``), the classroom's hub
and members (``asroot.classroom``). None of them gets a login shell (:data:`NOLOGIN`): nobody logs in
to the machine with them; terminals in JupyterLab run ``bash`` by name (``labctl.jupyter``'s
``SHELL``), not the account's shell.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from labcore import safefs
from labcore.errors import LabFailure
from labcore.subids import subid_range

__all__ = ["NOLOGIN", "SUBID_SIZE", "ensure_account", "ensure_subids", "free_subid_start", "remove_subids"]

NOLOGIN = "/usr/sbin/nologin"
SUBID_SIZE = 65536


def free_subid_start(kind: str) -> int:
    """The first id after every range in ``/etc/sub{kind}`` (at least 100000)."""
    top = 100_000
    try:
        for line in safefs.read_private(Path(f"/etc/sub{kind}")).decode().splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3:
                top = max(top, int(parts[1]) + int(parts[2]))
    except OSError:
        pass
    return top


def ensure_subids(user: str) -> bool:
    """A subordinate uid and gid range of :data:`SUBID_SIZE` for ``user`` unless it has them. True if
    one was added now."""
    added = False
    for kind, flag in (("uid", "--add-subuids"), ("gid", "--add-subgids")):
        if subid_range(user, kind) is None:
            start = free_subid_start(kind)
            subprocess.run(["usermod", flag, f"{start}-{start + SUBID_SIZE - 1}", user], check=True,
                           capture_output=True)
            added = True
    return added


def remove_subids(user: str) -> None:
    """Drop ``user``'s lines from ``/etc/subuid`` and ``/etc/subgid`` (a test classroom's accounts)."""
    for f in ("/etc/subuid", "/etc/subgid"):
        lines = safefs.read_private(Path(f)).decode().splitlines()
        safefs.write_private(Path(f), "".join(line + "\n" for line in lines if not line.startswith(f"{user}:")),
                             mode=0o644)


def ensure_account(name: str, *, comment: str, home: Path | None = None, create_home: bool = True,
                   system: bool = False, groups: tuple[str, ...] = (), subids: bool = True,
                   private_home: bool = True, claim: str = "") -> tuple[pwd.struct_passwd, bool]:
    """Root: the account ``name`` (own group, no password, shell :data:`NOLOGIN`) unless it exists, its
    home private (0700) and, with ``subids``, a subordinate uid/gid range. True if made now.

    ``home``: its home directory (useradd's default otherwise); ``create_home``: useradd makes it (with
    the skeleton), else root makes it empty here, owned by the account; ``private_home`` False: the
    caller looks after the home (the hub's, opened without following links). ``system``: a system account
    (uid below 1000). ``groups``: supplementary groups. ``claim``: an existing account must carry
    ``comment`` in its GECOS field, or this sentence is raised (a real user of this machine is never
    taken over); every account that carries it is given :data:`NOLOGIN` too (made before it was the rule)."""
    made = False
    try:
        pw = pwd.getpwnam(name)
        if claim and comment not in pw.pw_gecos:
            raise LabFailure(claim)
    except KeyError:
        argv = ["useradd", "--shell", NOLOGIN, "--user-group", "--comment", comment]
        argv += ["--system"] if system else []
        argv += ["--home-dir", str(home)] if home else []
        argv += ["--create-home"] if create_home else ["--no-create-home"]
        argv += ["--groups", ",".join(groups)] if groups else []
        subprocess.run([*argv, name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        made = True
    if claim and pw.pw_shell != NOLOGIN:
        subprocess.run(["usermod", "--shell", NOLOGIN, name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
    if private_home:
        if not create_home:
            Path(pw.pw_dir).mkdir(parents=True, exist_ok=True)
            os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
        os.chmod(pw.pw_dir, 0o700)
    if subids:
        ensure_subids(name)
    return pw, made
