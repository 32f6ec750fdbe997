"""Subordinate uid/gid ranges (``/etc/subuid``, ``/etc/subgid``): what a rootless engine maps its
containers' users onto. Read by anyone (the launcher checks the account has one); written by root only
(``asroot.system``)."""

from __future__ import annotations

import pwd
from pathlib import Path

__all__ = ["subid_range", "uid_of"]


def subid_range(user: str, kind: str = "uid") -> tuple[int, int] | None:
    """The first (start, count) of ``user`` in /etc/sub{uid,gid}, or None."""
    try:
        lines = Path(f"/etc/sub{kind}").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid_of(user))):
            return int(parts[1]), int(parts[2])
    return None


def uid_of(user: str) -> int:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return -1
