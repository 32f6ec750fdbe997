"""``./lab`` run by root: the one-time system step, then the command as the lab's unprivileged account.

The bash launcher runs ``python -m asroot`` when it runs as root, ``python -m labctl`` otherwise. Root
keeps only what needs root: ``setup``, ``classroom ...``, ``grade autograde|all`` (a sandbox per
submission) and, for ``test``, the suites that need root (``tests.support.suite``). Everything else is
handed to ``python -m labctl`` as the lab's account (``dockerlab``, or ``LAB_USER``/``SUDO_USER``).
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess
import sys
from labcore import safefs
from pathlib import Path

from asroot import system
from labcore.errors import LabFailure
from labcore.state import REPO, paths
from labctl.__main__ import failed, parse, say
from labengine import cgroups

__all__ = ["main"]


def _account() -> str:
    sudo_user = os.environ.get("SUDO_USER", "")
    return os.environ.get("LAB_USER") or (sudo_user if sudo_user not in ("", "root") else system.LAB_ACCOUNT)


def _as_account(user: str, argv: list[str], env_extra: dict[str, str] | None = None) -> list[str]:
    """The command line that runs ``python -m labctl argv`` as ``user``, with a clean environment."""
    pw = pwd.getpwnam(user)
    keep = {k: v for k, v in os.environ.items()
            if k.startswith("LAB_") or k in ("TERM", "DISPLAY", "LANG", "LC_ALL", "PYTEST_ADDOPTS")}
    env = {"HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
           "LAB_AS_ACCOUNT": "1", "LAB_HOME": str(paths().home), **keep, **(env_extra or {})}
    return ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
            sys.executable, "-m", "labctl", *argv]


def cmd_setup(args: argparse.Namespace) -> int:
    user = args.user or _account()
    changed = system.prepare(user, paths().home, create=user == system.LAB_ACCOUNT)
    say("one-time system step done: " + (", ".join(changed) or "nothing needed changing")
        + f"; now run ./lab up as {user}")
    return 0


def cmd_classroom(args: argparse.Namespace) -> int:
    """Instructor, as root: JupyterHub with one rootless engine per learner (asroot.classroom)."""
    from asroot import classroom

    if args.action == "status":
        print(classroom.status())
        return 0
    if os.geteuid() != 0:
        raise LabFailure(f"A classroom makes and runs Unix accounts: run 'sudo ./lab classroom {args.action}'.")
    if args.action == "down":
        classroom.down(say=say)
        return 0
    if args.action == "add":
        if not args.name:
            raise LabFailure("Say whom to add: ./lab classroom add NAME")
        classroom.add(args.name, say=say)
        return 0
    if args.action == "collect":
        if not args.name:
            raise LabFailure("Say where to: ./lab classroom collect DIR (then: sudo ./lab grade all DIR)")
        classroom.collect(Path(args.name), say=say)
        say(f"next: sudo ./lab grade all {args.name} --out results")
        return 0
    if args.action == "passwd":
        if not args.name:
            raise LabFailure("Say whose password to renew: ./lab classroom passwd NAME")
        passwords = classroom.new_passwords([args.name])
    else:
        user = _account()
        system.prepare(user, paths().home, create=user == system.LAB_ACCOUNT)
        if subprocess.call(_as_account(user, ["up", "--no-jupyter"])) != 0:  # the course images, built once
            return 1
        if subprocess.call(_as_account(user, ["grade", "generate"])) != 0:  # the labs as learners get them
            return 1
        host = "" if args.single_origin else args.host
        _, passwords = classroom.up(args.learners, ip=args.ip, port=args.port, say=say, host=host)
    if passwords:
        say("passwords (shown once; the Hub keeps only hashes):")
        for name, pw in passwords.items():
            print(f"  {name:<12} {pw}")
    return 0


def as_root(args: argparse.Namespace, argv: list[str]) -> int:
    """Root: the one-time system step, then the command as the lab's account (and, for `test`,
    the checks that need root: grading sandboxes and what a second account can see)."""
    user = _account()
    changed = system.prepare(user, paths().home, create=user == system.LAB_ACCOUNT)
    say("one-time system step as root: " + (", ".join(changed) or "already done")
        + f"; the lab runs as '{user}', never as root")
    cgroups.enter(user)  # everything started from here on is inside the account's cgroup
    if args.cmd == "build" and not args.out:
        return _build_as_root(user, argv)
    if args.cmd != "test":
        cmd = _as_account(user, argv)
        os.execvp(cmd[0], cmd)
    from tests.support.suite import run_as_root  # ./lab test: the suites, root's and the account's

    return run_as_root(user, args, argv, _as_account)


def _build_as_root(user: str, argv: list[str]) -> int:
    """The account executes the chapters into its own lab home; root copies the notebooks into the
    clone (which the account cannot write)."""
    out = paths().home / "authoring"
    if "--no-exec" not in argv and subprocess.call(_as_account(user, ["up", "--no-jupyter"])) != 0:
        return 1
    rc = subprocess.call(["runuser", "-u", user, "--", "mkdir", "-p", str(out)])
    rc = rc or subprocess.call(_as_account(user, [*argv, "--out", str(out)]))
    if rc == 0:
        from labctl import authoring

        for nb in sorted(out.glob("*.ipynb")):
            target = authoring.destination(nb.name)
            safefs.copy_file(nb, target, mode=0o644)
            nb.unlink()
            say(f"{target.relative_to(REPO)} updated")
    return rc




def cmd_grade(args: argparse.Namespace) -> int:
    """Root's grading: autograde/all in a sandbox per submission (asroot.grading.autograde)."""
    from asroot.grading.autograde import main as grade_main  # nbgrader's import costs a second

    return grade_main(list(args.rest))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["up"]
    args = parse(argv)
    try:
        if os.geteuid() != 0:
            raise LabFailure("python -m asroot is root's: run ./lab as yourself, or sudo ./lab.")
        if args.cmd == "classroom":
            return cmd_classroom(args)
        if args.cmd == "setup":
            return cmd_setup(args)
        if args.cmd == "grade":
            return cmd_grade(args)
        return as_root(args, argv)
    except (LabFailure, RuntimeError, KeyboardInterrupt) as e:
        return failed(e)


if __name__ == "__main__":
    sys.exit(main())
