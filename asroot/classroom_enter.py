"""Root's one gate into a class member's server: the hub account may run this as root through sudo
(one rule, this program only), and it refuses anything but a class member and one of two actions.

    dockerlab-enter MEMBER spawner [--logging=LEVEL]   # the mediator (spawn or signal the server)
    dockerlab-enter MEMBER progress                    # classroom.progress: which exercises pass on their engine

What it does for an accepted member: moves itself into the member's cgroup (``cgroups.enter``: the
limits root set), enters the member's network namespace (``classroom_netns``), drops to the member's
account (``setpriv``: their uid, gid and groups, a fresh environment) and runs the action's program,
which is root-owned and fixed here, with ``XDG_RUNTIME_DIR`` the member's run directory that root
made (``member_run``: ``/run/<classroom>/<uid>``, theirs, 0700, in a root-owned directory), where their
server keeps its sockets and pid files: nobody can make it first, as anyone could in ``/tmp``. A name is accepted
only if it is in the class's root-owned
configuration, is an account ``classroom up`` made (its comment, its group), is not root or the hub,
and has a namespace; anything else gets one sentence and exit status 2.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import sys
from pathlib import Path

from labengine import cgroups
from classroom.config import BASE, CODE, COMMENT, GROUP, HUB, RUN_ROOT, SERVER, VENV_BIN, ClassConfig, member_run, tag
from asroot.classroom_netns import netns_path
from labcore import safefs
from labcore.errors import LabFailure

__all__ = ["ACTIONS", "RUN_ROOT", "Refused", "command", "main", "member_run", "prepare_run"]

ACTIONS = ("spawner", "progress")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "debug", "info", "warning", "error", "critical", "none")
_NAME = re.compile(r"[a-z][a-z0-9-]{1,30}")


def prepare_run(pw: pwd.struct_passwd, root: Path = RUN_ROOT) -> Path:
    """Root: the member's run directory, owned by them (0700), in ``root`` (root's, 0711: only root
    makes entries there). Something else in its place (an earlier account's with this uid) is removed."""
    try:
        root.mkdir(mode=0o711)
    except FileExistsError:
        pass
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
        raise Refused(f"{root} is not a directory of root's: remove it, then try again")
    fd = safefs.open_dir(root)
    try:
        os.fchmod(fd, 0o711)
    finally:
        os.close(fd)
    d = member_run(pw.pw_uid, root)
    try:
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode):
            d.unlink()
        elif st.st_uid != pw.pw_uid:
            safefs.remove_tree(d)
    except FileNotFoundError:
        pass
    try:
        d.mkdir(mode=0o700)
    except FileExistsError:
        pass
    fd = safefs.open_dir(d)
    try:
        os.fchown(fd, pw.pw_uid, pw.pw_gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return d


class Refused(Exception):
    """One sentence: why this call is not allowed."""


def member(name: str) -> pwd.struct_passwd:
    """The class member's passwd entry, or Refused."""
    if not _NAME.fullmatch(name) or name in ("root", HUB):
        raise Refused(f"{name!r} is not a class member")
    try:
        cfg = ClassConfig.load()
    except LabFailure:
        raise Refused("there is no classroom on this machine") from None
    if name not in {*cfg.learners, cfg.instructor}:
        raise Refused(f"{name!r} is not a class member")
    try:
        pw = pwd.getpwnam(name)
        group = grp.getgrnam(GROUP)
    except KeyError:
        raise Refused(f"{name!r} has no account of the classroom") from None
    if pw.pw_uid == 0 or COMMENT not in pw.pw_gecos or name not in group.gr_mem:
        raise Refused(f"{name!r} is not an account the classroom made")
    return pw


def command(argv: list[str]) -> tuple[pwd.struct_passwd, list[str]]:
    """The member and the command line to exec for ``argv`` (MEMBER ACTION [ARGS]), or Refused."""
    if len(argv) < 2 or argv[1] not in ACTIONS:
        raise Refused("usage: dockerlab-enter MEMBER spawner [--logging=LEVEL] | dockerlab-enter MEMBER progress")
    pw = member(argv[0])
    action, rest = argv[1], argv[2:]
    if action == "spawner":
        bad = [a for a in rest if a not in {f"--logging={level}" for level in LEVELS}]
        if bad:
            raise Refused(f"argument not allowed: {bad[0]!r}")
        mediator = CODE / "classroom" / "mediator.py"  # root's release of it; standard library only: -S
        program = [str(VENV_BIN / "python"), "-I", "-S", str(mediator), str(SERVER), *rest]
    else:
        if rest:
            raise Refused("progress takes no arguments")
        # the course from root's release (as the member's server runs it), never the clone: -I drops
        # PYTHONPATH, so the release goes first on sys.path here
        run = (f"import runpy, sys; sys.path.insert(0, {str(CODE)!r}); "
               "runpy.run_module('classroom.progress', run_name='__main__')")
        program = [str(VENV_BIN / "python"), "-I", "-c", run, "--classroom"]
    ns = netns_path(BASE.name, pw.pw_name)
    if not ns.exists():
        raise Refused(f"{pw.pw_name} has no network namespace: run 'sudo ./lab classroom up' again")
    return pw, ["/usr/bin/nsenter", f"--net={ns}", "--",
                "/usr/bin/setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--reset-env",
                "--", "/usr/bin/env", f"LAB_CLASSROOM_TAG={tag()}", f"XDG_RUNTIME_DIR={member_run(pw.pw_uid)}",
                *program]


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("dockerlab-enter: only the classroom's hub runs this, through sudo", file=sys.stderr)
        return 2
    try:
        pw, exe = command(argv)
        try:
            prepare_run(pw)
        except OSError as e:
            raise Refused(f"could not make {argv[0]}'s run directory ({e.strerror})") from None
        cgroups.enter(pw.pw_name, strict=True)  # the member's limits hold for everything started from here
    except Refused as e:
        print(f"dockerlab-enter: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"dockerlab-enter: could not enter {argv[0]}'s cgroup ({e.strerror})", file=sys.stderr)
        return 2
    os.chdir("/")
    os.execv(exe[0], exe)
    return 0  # not reached


def script() -> str:
    """The root-owned wrapper sudo runs: a clean environment, Python isolated from its environment."""
    return ("#!/bin/sh\n# Docker Lab classroom: the hub's one way to run something as a class member "
            "(asroot.classroom_enter).\n"
            f"exec /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LAB_CLASSROOM_TAG={tag()} "
            f"{VENV_BIN / 'python'} -I -m asroot.classroom_enter \"$@\"\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

