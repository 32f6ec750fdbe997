"""Background processes the lab owns, tracked by pid files (no systemd on these machines)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["LabFailure", "free_port", "kill_matching", "port_free", "private_dir", "remove_tree", "running_pid", "start",
           "stop", "unmount_below", "wait_for"]


class LabFailure(Exception):
    """One sentence for the person at the terminal: what went wrong and what to do."""


def running_pid(pidfile: Path, expect: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line contains ``expect``."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if expect in cmdline else None


def start(argv: Sequence[str], pidfile: Path, log: Path, env: dict[str, str] | None = None,
          preexec: Callable[[], None] | None = None) -> int:
    """Start ``argv`` detached from this terminal, its output appended to ``log`` (owner-only)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})}, preexec_fn=preexec,
        )
    pidfile.write_text(str(proc.pid))
    return proc.pid


def stop(pidfile: Path, expect: str, timeout: float = 20.0) -> bool:
    """Stop the process of ``pidfile`` (only if it is still what we started). True if it ran."""
    pid = running_pid(pidfile, expect)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(pidfile, expect):
        _reap(pid)
        time.sleep(0.1)
    if running_pid(pidfile, expect):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        _reap(pid)
    pidfile.unlink(missing_ok=True)
    return True


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int, avoid: set[int] = frozenset(), span: int = 100) -> int:  # type: ignore[assignment]
    for port in range(preferred, preferred + span):
        if port not in avoid and port_free(port):
            return port
    raise LabFailure(f"No free port between {preferred} and {preferred + span}: stop what uses them, then try again.")


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None,
             pid: int | None = None) -> None:
    """Wait until ``check()``; give up early if process ``pid`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and _exited(pid):
            timeout = 0
            break
        time.sleep(0.1)
    tail = ""
    if log and log.exists():
        tail = " Last log lines:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-5:])
    why = "exited at start" if timeout == 0 else f"did not become ready within {timeout:.0f} s"
    raise LabFailure(f"{what} {why}; see {log}.{tail}")


def unmount_below(root: Path) -> None:
    """Lazily unmount every mount under ``root`` (overlays a crashed engine left), deepest first."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def kill_matching(text: str) -> list[int]:
    """SIGKILL this account's processes whose command line contains ``text`` (e.g. container shims
    that name a dead engine's exec root). Returns their pids."""
    killed = []
    me = os.getuid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != me:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this account can enter; refuses one owned by someone else
    (e.g. planted in /tmp by another account) or a symlink."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    st = os.lstat(path)
    import stat as stat_

    if not stat_.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise LabFailure(f"{path} exists but is not a directory of this account: remove it, then try again.")
    os.chmod(path, 0o700)
    return path


def remove_tree(path: Path) -> None:
    """Delete ``path`` even where a rootless engine left files owned by the account's subordinate
    uids (a container's root): inside a user namespace, as Docker's rootless guide does."""
    if not path.exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() and os.geteuid() != 0:
        kit = shutil.which("rootlesskit")
        from .enginepkgs import cache_dir

        for cand in sorted(cache_dir().glob("*/usr/bin/rootlesskit")):
            kit = str(cand)
        if kit:
            subprocess.run([kit, "--net=host", "rm", "-rf", str(path)], capture_output=True, check=False,
                           timeout=300)
    shutil.rmtree(path, ignore_errors=True)
