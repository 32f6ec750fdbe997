"""Background processes the lab owns, tracked by pid files (no systemd on these machines), and the
project's one set of ``/proc`` readers (command lines, parents, memory) that everyone else uses."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from labcore import safefs
from labcore.errors import LabFailure

__all__ = ["LabFailure", "cmdline", "end_session", "free_port", "identity", "kill_matching", "mem_available_kib",
           "memory_kib", "parent_and_state", "pids", "port_free", "remove_tree", "running_pid", "start", "stop",
           "unmount_below", "wait_for"]

PROC = Path("/proc")


def pids() -> Iterator[int]:
    """The pid of every process this account can see (it may be gone by the time it is read)."""
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def cmdline(pid: int) -> list[bytes]:
    """The process's argv, raw (raises OSError if it is gone or not ours to read)."""
    data = (PROC / str(pid) / "cmdline").read_bytes()
    return data.removesuffix(b"\0").split(b"\0") if data else []


def _cmdline_text(pid: int) -> str:
    return b" ".join(cmdline(pid)).decode(errors="replace") + " "


def parent_and_state(pid: int) -> tuple[int, str]:
    """(parent pid, state letter) from ``/proc/<pid>/stat`` (the command name may hold spaces)."""
    stat = (PROC / str(pid) / "stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def identity(pid: int) -> tuple[int, int, str, int]:
    """(pid, start time in clock ticks since boot, command name, real uid) of a running process, from
    ``/proc/<pid>/stat`` and ``status``: a pid can be taken again by another process, a pid with its
    start time names one process. OSError if it is gone."""
    stat = safefs.read_kernel(f"/proc/{pid}/stat", 4096)
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    start = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22
    status = safefs.read_kernel(f"/proc/{pid}/status", 16384)
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    return pid, start, name, uid


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB from ``/proc/<pid>/smaps_rollup``; (0, 0) if the process is gone."""
    vals = {"Rss:": 0, "Pss:": 0}
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in vals:
                vals[parts[0]] = int(parts[1])
    except OSError:
        pass
    return vals["Rss:"], vals["Pss:"]


def mem_available_kib() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` (0 if it cannot be read)."""
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def running_pid(pidfile: Path, expect: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line contains ``expect``."""
    try:
        pid = int(pidfile.read_text().strip())
        line = _cmdline_text(pid)
    except (OSError, ValueError):
        return None
    return pid if expect in line else None


def start(argv: Sequence[str], pidfile: Path, log: Path, env: dict[str, str] | None = None,
          preexec: Callable[[], None] | None = None, exact_env: bool = False) -> int:
    """Start ``argv`` detached from this terminal, its output appended to ``log`` (owner-only).
    Its environment is this process's plus ``env``; with ``exact_env``, ``env`` and nothing else
    (root starting a process for another account passes none of its own variables on)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:  # root starts processes for other accounts with their logs in their directories: no link followed
        out_file = safefs.open_private(log, "ab")
    except safefs.Refused:
        raise LabFailure(f"The log {log} is not a regular file: remove it, then try again.") from None
    except OSError as e:
        raise LabFailure(f"Cannot open the log {log} ({e.strerror}): remove it, then try again.") from None
    os.fchmod(out_file.fileno(), 0o600)
    with out_file as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=dict(env or {}) if exact_env else {**os.environ, **(env or {})},
            preexec_fn=preexec,
        )
    pidfile.unlink(missing_ok=True)  # a new file, never through a link in its place
    with os.fdopen(os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "w") as f:
        f.write(str(proc.pid))
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
        return not (PROC / str(pid)).exists()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def end_session(p: subprocess.Popen[bytes], timeout: float = 5) -> None:
    """Kill the session ``p`` leads (started with ``start_new_session``; ``p`` not yet reaped, so the id is
    still its own), then reap ``p`` within ``timeout`` s. What left the session or is stuck in the kernel is
    not waited for."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
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
    """Lazily unmount every mount under ``root`` and ``root`` itself (overlays a crashed engine left; the private
    bind mount dockerd makes of its data root under a shared mount), deepest first."""
    top = str(root.resolve()).rstrip("/")
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1] == top or line.split()[1].startswith(top + "/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def kill_matching(text: str) -> list[int]:
    """SIGKILL this account's processes whose command line contains ``text`` (e.g. container shims
    that name a dead engine's exec root). Returns their pids."""
    killed = []
    me = os.getuid()
    for pid in pids():
        if pid == os.getpid():
            continue
        try:
            if (PROC / str(pid)).stat().st_uid != me:
                continue
            line = _cmdline_text(pid)
        except OSError:
            continue
        if text in line:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


def engine_cache_dir() -> Path:
    """Where this account keeps the engine packages ``labengine.enginepkgs`` fetches."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dockerlab" / "engine"


def remove_tree(path: Path) -> None:
    """Delete ``path`` even where a rootless engine left files owned by the account's subordinate
    uids (a container's root): inside a user namespace, as Docker's rootless guide does."""
    if not path.exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() and os.geteuid() != 0:
        kit = shutil.which("rootlesskit")
        for cand in sorted(engine_cache_dir().glob("*/usr/bin/rootlesskit")):
            kit = str(cand)
        if kit:
            subprocess.run([kit, "--net=host", "rm", "-rf", str(path)], capture_output=True, check=False,
                           timeout=300)
    shutil.rmtree(path, ignore_errors=True)
