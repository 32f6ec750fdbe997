"""The grading accounts: a small pool of throwaway, unprivileged accounts (``dlgrade1`` …), one per
submission being graded at a time. Made once by root (``./lab grade`` as root, or ``sudo ./lab setup``),
wiped and reused; never a login.

Each account has its own subordinate uid/gid range (for its rootless engine) and its home at
``/var/lib/dockerlab-grade/<account>``, where ``./lab grade`` mounts a fresh size-limited tmpfs for
each submission (engine data, registry, the copy of the notebook), so nothing of one submission is
left for the next. The engine's programs come from a **root-owned, read-only** copy of the lab's
engine packages (``/var/lib/dockerlab-grade/engine/<version>``): no grading account can change them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import stat
import subprocess
import time
from labcore import proc, safefs
from pathlib import Path

from labcore.state import GRADE_BASE
from labengine.enginepkgs import EngineBinaries
from labcore.errors import LabFailure
from asroot.accounts import ensure_account
from asroot.system import LAB_ACCOUNT, check_userns

__all__ = ["BASE", "POOL_MAX", "PREFIX", "account_pids", "engine_binaries", "ensure_pool", "kill_account",
           "pool_names"]

BASE = GRADE_BASE
PREFIX = "dlgrade"
POOL_MAX = 8


def pool_names(n: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(1, n + 1)]


def _ensure_account(name: str) -> pwd.struct_passwd:
    return ensure_account(name, comment="Docker Lab grading", home=BASE / name, create_home=False, system=True)[0]


def ensure_pool(n: int) -> list[pwd.struct_passwd]:
    """Root, once (idempotent): ``n`` grading accounts (at most :data:`POOL_MAX`)."""
    if os.geteuid() != 0:
        raise LabFailure("Grading accounts are made by root: run 'sudo ./lab grade ...'.")
    if not 1 <= n <= POOL_MAX:
        raise LabFailure(f"--jobs must be between 1 and {POOL_MAX}.")
    check_userns()
    BASE.mkdir(parents=True, exist_ok=True)
    os.chown(BASE, 0, 0)
    os.chmod(BASE, 0o755)
    return [_ensure_account(name) for name in pool_names(n)]


def account_pids(uid: int) -> list[int]:
    """Every live process (not a zombie) whose real or effective uid is ``uid`` (a grading account's leftovers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = safefs.read_kernel(f"/proc/{entry}/status")
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                break
            if line.startswith("Uid:"):
                real, eff = line.split()[1:3]
                if int(real) == uid or int(eff) == uid:
                    found.append(int(entry))
                break
    return found


def kill_account(uid: int, rounds: int = 50, pause: float = 0.05) -> None:
    """SIGKILL every process of ``uid`` until none is left (or ``rounds`` passes)."""
    for _ in range(rounds):
        left = account_pids(uid)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(pause)


_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_-]{0,63}")


def _as_account(account: str, argv: list[str]) -> list[str]:
    """``argv`` run as ``account``: what root takes from the account's home is read with its rights."""
    return ["runuser", "-u", account, "--", "env", "-i", "PATH=/usr/bin:/bin", *argv]


ENGINE_COPY_CAP = 1 << 30  # the engine's packages unpacked: ~310 MiB in 373 entries (docker.io 28.5 and companions)
ENGINE_COPY_TIMEOUT = 300


def _account_process(account: str, argv: list[str]) -> subprocess.Popen[bytes]:
    """``argv`` as ``account`` in a session of its own (all of it can be killed), its stdout a pipe."""
    return subprocess.Popen(_as_account(account, argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, cwd="/", start_new_session=True)


def _exit_status(p: subprocess.Popen[bytes], timeout: float) -> int | None:
    """``p``'s exit status once it has ended (within ``timeout`` s, else None), left unreaped: its pid stays
    its own, and its session's, until :func:`_end`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:
            return None
        if r is not None and r.si_pid:
            return r.si_status if r.si_code == os.CLD_EXITED else -1
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _end(p: subprocess.Popen[bytes]) -> None:
    """Kill ``p``'s session (runuser and what it started as the account), reap ``p``, close its pipe."""
    proc.end_session(p)
    if p.stdout:
        p.stdout.close()


def _read_as_account(account: str, path: Path, timeout: float = 30) -> bytes | None:
    """The first 64 KiB of ``path``, read as ``account`` within ``timeout`` s (a FIFO does not hold root)."""
    p = _account_process(account, ["head", "-c", "65536", "--", str(path)])
    assert p.stdout is not None
    try:
        out, _ = safefs.read_bounded(safefs.TimedReader(p.stdout.fileno(), 65536, time.monotonic() + timeout), 65536)
        return out if _exit_status(p, timeout) == 0 else None
    except OSError:
        return None
    finally:
        _end(p)


def _unpack_as_roots(account: str, root: str, tmp: Path) -> str:
    """The account's tree ``root``, packed by the account (its rights; links stay links), unpacked into ``tmp``
    as root's by :func:`labcore.safefs.extract_tar_stream` (no device, no link followed, at most
    ENGINE_COPY_CAP bytes), the stream read for at most ENGINE_COPY_TIMEOUT s. "" when done, else why not."""
    pack = _account_process(account, ["tar", "-C", root, "-cf", "-", "."])
    assert pack.stdout is not None
    deadline = time.monotonic() + ENGINE_COPY_TIMEOUT
    try:
        # the stream may be a little longer than what it unpacks to when its files are small (a 512-byte
        # header each): the cap counts a 4 KiB block per entry, so this slack covers any honest tree
        stream = safefs.TimedReader(pack.stdout.fileno(), ENGINE_COPY_CAP + (16 << 20), deadline)
        safefs.extract_tar_stream(stream, tmp, max_bytes=ENGINE_COPY_CAP)
        if _exit_status(pack, max(1.0, deadline - time.monotonic())) != 0:
            return "the account's tar failed or did not end"
        return ""
    except OSError as e:
        return str(e)
    finally:
        _end(pack)


def _complete(target: Path) -> bool:
    try:
        mark, copy = os.lstat(target / ".complete"), os.lstat(target / "root")
    except OSError:
        return False
    return stat.S_ISREG(mark.st_mode) and mark.st_uid == 0 and stat.S_ISDIR(copy.st_mode) and copy.st_uid == 0


def engine_binaries(account: str = LAB_ACCOUNT, base: Path = BASE, home: Path | None = None) -> EngineBinaries:
    """The lab's engine packages as a root-owned, read-only copy every grading account can run.

    They come from ``account``'s cache, which that account controls: root reads ``current.json`` and
    the tree *as the account* (``runuser``: nothing it could not read itself), takes a ``version``
    only of the shape of a Debian version and a ``root`` only under the account's engine cache, and
    unpacks the tree into ``base/engine/<version>`` as root's. ``home``: the account's (tests)."""
    try:
        lab_home = home or Path(pwd.getpwnam(account).pw_dir)
    except KeyError:
        raise LabFailure("The lab has not been set up on this machine: run './lab up' first.") from None
    cache = lab_home / ".cache" / "dockerlab" / "engine"
    raw = _read_as_account(account, cache / "current.json")
    try:
        info = json.loads(raw) if raw is not None else None
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise LabFailure("The lab's engine packages are not downloaded yet: run './lab up' first.")
    version, root = info.get("version"), info.get("root")
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or not isinstance(root, str) \
            or not os.path.realpath(root).startswith(os.path.realpath(cache) + "/"):
        raise LabFailure(f"{cache / 'current.json'} is not what './lab up' writes (its version or root is "
                         "off): run './lab up' as the lab's account again.")
    source = info.get("source", "")
    packages = info.get("packages", {})
    if not isinstance(source, str) or not isinstance(packages, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in packages.items()):
        source, packages = "", {}
    engines = base / "engine"
    target = engines / version  # target/root: the copy; target/.complete: root's mark, beside it, once whole
    if not _complete(target):
        engines.mkdir(parents=True, exist_ok=True)
        os.chown(engines, 0, 0)
        os.chmod(engines, 0o755)
        safefs.remove_tree(target)
        tmp = engines / f".{version}.tmp"  # a version never starts with a dot: no version's copy is another's tmp
        safefs.remove_tree(tmp)
        tmp.mkdir(mode=0o700)
        try:
            (tmp / "root").mkdir(mode=0o700)
            why = _unpack_as_roots(account, os.path.realpath(root), tmp / "root")
            if why:
                raise LabFailure(f"The lab's engine packages in {root} could not be copied for grading ({why}): "
                                 "run './lab up' as the lab's account again.")
            for d in (tmp / "root", tmp):
                os.chmod(d, 0o755)
            safefs.write_private(tmp / ".complete", b"", 0o644)
            tmp.rename(target)
        except BaseException:
            safefs.remove_tree(tmp)
            raise
    return EngineBinaries(root=str(target / "root"), version=version, source=source, packages=packages)
