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
import subprocess
import time
from labcore import safefs
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


ENGINE_COPY_CAP = 1 << 30  # the engine's packages unpacked: ~310 MiB (docker.io 28.5 and its companions)
ENGINE_COPY_TIMEOUT = 300


def _pack_and_unpack(pack_argv: list[str], unpack_argv: list[str]) -> bool:
    """``pack_argv | head -c ENGINE_COPY_CAP | unpack_argv``, all three ended within ENGINE_COPY_TIMEOUT s;
    True if each succeeded."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pack = subprocess.Popen(pack_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/")
        procs.append(pack)
        cut = subprocess.Popen(["head", "-c", str(ENGINE_COPY_CAP)], stdin=pack.stdout, stdout=subprocess.PIPE)
        procs.append(cut)
        unpack = subprocess.Popen(unpack_argv, stdin=cut.stdout, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, cwd="/")
        procs.append(unpack)
        for pipe in (pack.stdout, cut.stdout):
            if pipe:
                pipe.close()  # only the next in the line holds each pipe: a reader's end closes the writer's
        deadline = time.monotonic() + ENGINE_COPY_TIMEOUT
        codes = [p.wait(timeout=max(0.1, deadline - time.monotonic())) for p in (unpack, cut, pack)]
        return codes == [0, 0, 0]
    except subprocess.TimeoutExpired:
        return False
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _bounded_ok(argv: list[str], timeout: float = 120) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


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
    out = subprocess.run(_as_account(account, ["head", "-c", "65536", "--", str(cache / "current.json")]),
                         capture_output=True, cwd="/", check=False)
    try:
        info = json.loads(out.stdout) if out.returncode == 0 else None
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
    target = engines / version
    if not (target / ".complete").exists():
        engines.mkdir(parents=True, exist_ok=True)
        os.chown(engines, 0, 0)
        os.chmod(engines, 0o755)
        safefs.remove_tree(target)
        tmp = target.with_name(target.name + ".tmp")
        safefs.remove_tree(tmp)
        tmp.mkdir(mode=0o755)
        # the account packs its tree (its own rights, links kept as links); root unpacks it as root's, at most
        # ENGINE_COPY_CAP bytes of it (``head`` cuts the stream: the packer dies of the closed pipe, or the
        # unpacker meets a cut archive) and for at most ENGINE_COPY_TIMEOUT seconds
        ok = _pack_and_unpack(_as_account(account, ["tar", "-C", os.path.realpath(root), "-cf", "-", "."]),
                              ["tar", "-C", str(tmp), "-xf", "-", "--no-same-owner", "--no-same-permissions"])
        ok = ok and all(_bounded_ok(argv) for argv in (["chown", "-R", "root:root", str(tmp)],
                                                        ["chmod", "-R", "go-w,a+rX", str(tmp)]))
        if not ok:
            safefs.remove_tree(tmp)
            raise LabFailure(f"The lab's engine packages in {root} could not be copied for grading (more than "
                             f"{ENGINE_COPY_CAP >> 20} MiB, or not within {ENGINE_COPY_TIMEOUT} s): run "
                             "'./lab up' as the lab's account again.")
        (tmp / ".complete").touch()
        tmp.rename(target)
    return EngineBinaries(root=str(target), version=version, source=source, packages=packages)
