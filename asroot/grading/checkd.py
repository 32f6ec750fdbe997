"""The check service of one grading sandbox (root's helper; the learner's code never runs here).

    python -m asroot.grading.checkd SOCKET RECORD UID

Runs in the sandbox's network namespace (so ``127.0.0.1`` is the sandbox's: its registry, its
published ports, the mirror's relay) with ``LAB_HOME`` pointing at a state file of root's. A test
cell's ``independently(name, *answers)`` sends ``{"check": name, "answers": [...]}`` over the unix
``SOCKET``; this process runs the check against the submission's engine through its socket, appends
the verdict to ``RECORD`` (root's file: the grade is taken from there, not from the notebook) and
answers with it. Before each check it makes sure the socket is still served by the engine's
``dockerd`` (``SO_PEERCRED``), not by something the submission put in its place.

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

from labcore import safefs

MAX_REQUEST = 64 << 10  # bytes of one request (a check's name and answers: a few hundred bytes in practice)
MAX_REASON = 2000  # characters of a verdict's reason kept in the reply and the record
MAX_NAME = 100  # characters of a check's name
CHECK_SECONDS = 90
MAX_CHECKS = 500  # requests answered; then the service stops and the submission is "not graded"
MAX_RECORD = 2 << 20  # bytes: the record under /run never grows past it (an honest lab: a few KiB)
FULL = "checkd.full"  # beside the record: why the service stopped early (the grader reads it)


def _peer_pid(sock_path: str) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock_path)
        pid, _, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return int(pid)


def _peer_uid(conn: socket.socket) -> int:
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return int(uid)


def _engine_is_genuine(docker_host: str, expected: Path) -> str:
    """Empty if the engine's socket is served by the dockerd that was started; else why not."""
    try:
        want = int(safefs.read_private(expected, 64))
    except (OSError, ValueError):
        return "the engine's process is not known"
    try:
        got = _peer_pid(docker_host.removeprefix("unix://"))
    except OSError as e:
        return f"the engine does not answer ({e})"
    return "" if got == want else f"the engine's socket is served by another process (pid {got}, not {want})"


def _expected_pid(expected: Path) -> int | None:
    try:
        return int(safefs.read_private(expected, 64))
    except (OSError, ValueError):
        return None


def guard_engine_connections(expected_pid: Callable[[], int | None]) -> None:
    """Check every connection docker-py opens here on that very connection: its peer (``SO_PEERCRED``)
    must be the dockerd the sandbox started. Checking the socket's path first and connecting again for
    the check would leave a moment to put another server in its place (the submission owns that
    directory); a connection already made cannot change its peer."""
    from docker.transport import unixconn

    plain = unixconn.UnixHTTPConnection.connect

    def connect(self: unixconn.UnixHTTPConnection) -> None:
        plain(self)
        pid, _, _ = struct.unpack("3i", self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        want = expected_pid()
        if want is None or pid != want:
            self.sock.close()
            raise ConnectionRefusedError(f"the engine's socket is served by another process (pid {pid}, "
                                         f"not the engine's {want})")

    unixconn.UnixHTTPConnection.connect = connect  # type: ignore[method-assign]


def _stop(record: Path, why: str) -> None:
    safefs.write_private(record.with_name(FULL), why)


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError(f"the check took longer than {CHECK_SECONDS} s")


def run(sock_path: Path, record: Path, uid: int) -> None:
    from labcore.state import load_state
    from labs.grading.checks import CHECKS, CheckResult, self_check

    os.environ.pop("DOCKERLAB_CHECKD", None)  # self_check runs the check here, never asks a service
    state = load_state()
    expected = record.with_name("dockerd.expected")
    guard_engine_connections(lambda: _expected_pid(expected))
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
