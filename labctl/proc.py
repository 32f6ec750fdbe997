"""Background processes the lab owns, tracked by pid files (no systemd on these machines)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["unmount_below", "LabFailure", "free_port", "port_free", "running_pid", "start", "stop", "wait_for"]


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


def start(argv: Sequence[str], pidfile: Path, log: Path, env: dict[str, str] | None = None) -> int:
    """Start ``argv`` detached from this terminal, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})},
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
