"""The check service of one grading sandbox (root's helper; the learner's code never runs here).

    python -m asroot.grading.checkd SOCKET RECORD UID

Runs in the sandbox's network namespace (so ``127.0.0.1`` is the sandbox's: its registry, its
published ports, the mirror's relay) with ``LAB_HOME`` pointing at a state file of root's. A test
cell's ``independently(name, *answers)`` sends ``{"check": name, "answers": [...]}`` over the unix
``SOCKET``; this process runs the check against the submission's engine through its socket, appends
the verdict to ``RECORD`` (root's file: the grade is taken from there, not from the notebook) and
answers with it. Before each check, and on every connection a check opens, it makes sure the socket is
served by the very ``dockerd`` the sandbox started (``SO_PEERCRED``'s pid, with that process's start
time: ``dockerd.expected`` beside the record, written by the grader), not by something the submission
put in its place; if it is not, the submission is "not graded" with the reason (:data:`FULL`).

Only the sandbox's own account (``UID``, by ``SO_PEERCRED``) is answered: another sandbox's
submission cannot send it answers or use up its :data:`MAX_CHECKS`, which count requests that parse
(empty or malformed connections are dropped and not counted).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

from labcore import proc, safefs

MAX_REQUEST = 64 << 10  # bytes of one request (a check's name and answers: a few hundred bytes in practice)
MAX_REASON = 2000  # characters of a verdict's reason kept in the reply and the record
MAX_NAME = 100  # characters of a check's name
CHECK_SECONDS = 90
MAX_CHECKS = 500  # requests answered; then the service stops and the submission is "not graded"
MAX_RECORD = 2 << 20  # bytes: the record under /run never grows past it (an honest lab: a few KiB)
FULL = "checkd.full"  # beside the record: why the submission is not graded (the grader reads it)


def _peer_pid(sock_path: str) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock_path)
        pid, _, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return int(pid)


def _peer_uid(conn: socket.socket) -> int:
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return int(uid)


Expected = tuple[int, int]  # the engine's pid and start time (labcore.proc.identity)


def _engine_is_genuine(docker_host: str, expected: Path) -> str:
    """Empty if the engine's socket is served by the dockerd that was started; else why not."""
    try:
        got = _peer_pid(docker_host.removeprefix("unix://"))
    except OSError as e:
        return f"the engine does not answer ({e})"
    return not_the_engine(got, _expected(expected))


def _expected(expected: Path) -> Expected | None:
    try:
        pid, start = safefs.read_private(expected, 64).split()
        return int(pid), int(start)
    except (OSError, ValueError):
        return None


def not_the_engine(pid: int, want: Expected | None) -> str:
    """Empty if ``pid`` is the engine's process (its pid and its start time); else why not."""
    if want is None:
        return "the engine's process is not known"
    if pid != want[0]:
        return f"the engine's socket is served by another process (pid {pid}, not the engine's {want[0]})"
    try:
        start = proc.identity(pid)[1]
    except (OSError, ValueError, IndexError):
        return f"the engine's process (pid {pid}) is gone"
    if start != want[1]:
        return f"the engine's pid {pid} is another process now (started at tick {start}, the engine at {want[1]})"
    return ""


def guard_engine_connections(expected: Callable[[], Expected | None],
                             impostor: Callable[[str], None] = lambda why: None) -> None:
    """Check every connection docker-py opens here on that very connection: its peer (``SO_PEERCRED``)
    must be the dockerd the sandbox started (pid and start time). Checking the socket's path first and
    connecting again for the check would leave a moment to put another server in its place (the
    submission owns that directory); a connection already made cannot change its peer. ``impostor``
    hears why a connection was refused."""
    from docker.transport import unixconn

    plain = unixconn.UnixHTTPConnection.connect

    def connect(self: unixconn.UnixHTTPConnection) -> None:
        plain(self)
        pid, _, _ = struct.unpack("3i", self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if why := not_the_engine(int(pid), expected()):
            self.sock.close()
            impostor(why)
            raise ConnectionRefusedError(why)

    unixconn.UnixHTTPConnection.connect = connect  # type: ignore[method-assign]


def _stop(record: Path, why: str) -> None:
    """The submission is not graded, for ``why`` (the first reason stays)."""
    if not record.with_name(FULL).exists():
        safefs.write_private(record.with_name(FULL), why)


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError(f"the check took longer than {CHECK_SECONDS} s")


def run(sock_path: Path, record: Path, uid: int) -> None:
    from labcore.state import load_state
    from labs.grading.checks import CHECKS, CheckResult, self_check

    os.environ.pop("DOCKERLAB_CHECKD", None)  # self_check runs the check here, never asks a service
    state = load_state()
    expected = record.with_name("dockerd.expected")
    guard_engine_connections(lambda: _expected(expected), lambda why: _stop(record, why))
    signal.signal(signal.SIGALRM, _alarm)
    sock_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    os.chmod(sock_path, 0o666)
    server.listen(8)
    print("checks served", flush=True)
    served = 0
    while served < MAX_CHECKS:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            try:
                if _peer_uid(conn) != uid:
                    continue
                data = b""
                while not data.endswith(b"\n") and len(data) <= MAX_REQUEST:
                    chunk = conn.recv(MAX_REQUEST + 1 - len(data))
                    if not chunk:
                        break
                    data += chunk
                if len(data) > MAX_REQUEST:
                    continue  # too large: dropped, not read on
                req = json.loads(data.decode())
                name, answers = str(req["check"])[:MAX_NAME], list(req.get("answers") or [])
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue
            served += 1
            if name not in CHECKS:
                verdict = CheckResult(False, f"unknown check {name!r}")
            elif why := _engine_is_genuine(state.docker_host, expected):
                verdict = CheckResult(False, why)
                _stop(record, why)
            else:
                signal.alarm(CHECK_SECONDS)
                try:
                    verdict = self_check(name, *answers)
                except TimeoutError as e:
                    verdict = CheckResult(False, str(e))
                finally:
                    signal.alarm(0)
            line = {"check": name, "ok": bool(verdict.ok), "reason": str(verdict.reason)[:MAX_REASON],
                    "t": time.time()}
            if not safefs.append_private(record, (json.dumps(line) + "\n").encode(), MAX_RECORD):
                _stop(record, f"the check service's record reached {MAX_RECORD >> 10} KiB")
                return
            try:
                conn.sendall((json.dumps({"ok": line["ok"], "reason": line["reason"]}, ensure_ascii=False)
                              + "\n").encode())
            except OSError:
                pass
    _stop(record, f"the submission asked for more than {MAX_CHECKS} checks")


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
