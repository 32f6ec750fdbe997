"""Root's check service asks the submission's engine, and only that engine: every connection it opens
is checked on itself (``SO_PEERCRED``), so a submission that puts a server of its own at the engine's
socket (its account owns that directory) gets nothing answered by it (review 19.5)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import docker
import pytest
import requests

from asroot.grading import checkd
from labcore.proc import identity

# A stand-in for the engine that answers docker-py's /_ping: in the test it plays the impostor (a process
# the submission started) and, with its own pid expected, the genuine engine.
IMPOSTOR = textwrap.dedent("""
    import http.server, socketserver, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"OK")
        def do_HEAD(self):
            self.do_GET()
        def log_message(self, *a):
            pass
    class S(socketserver.UnixStreamServer):
        def get_request(self):
            conn, _ = super().get_request()
            return conn, ("local", 0)
    S(sys.argv[1], H).serve_forever()
""")


def _answers(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(sock))
            return True
        except OSError:
            return False


@pytest.fixture()
def impostor(tmp_path: Path):  # type: ignore[no-untyped-def]
    sock = tmp_path / "docker.sock"
    p = subprocess.Popen([sys.executable, "-c", IMPOSTOR, str(sock)])
    deadline = time.monotonic() + 20
    while not _answers(sock) and time.monotonic() < deadline:  # the path appears at bind, before listen
        time.sleep(0.05)
    yield p, sock
    p.kill()
    p.wait()


def test_a_server_that_is_not_the_engine_is_not_asked(impostor, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from docker.transport import unixconn

    proc, sock = impostor
    monkeypatch.setattr(unixconn.UnixHTTPConnection, "connect", unixconn.UnixHTTPConnection.connect)
    start = identity(proc.pid)[1]
    want: list[tuple[int, int] | None] = [(proc.pid + 100000, start)]  # the dockerd the sandbox started (not this)
    heard: list[str] = []
    checkd.guard_engine_connections(lambda: want[0], heard.append)
    api = docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=10)
    refused = (docker.errors.DockerException, requests.exceptions.ConnectionError)
    with pytest.raises(refused, match="another process") as e:
        api.ping()
    assert str(proc.pid) in str(e.value) and str(proc.pid) in heard[-1]
    want[0] = None  # the engine's pid unknown: nothing is asked either
    with pytest.raises(refused):
        docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=10).ping()
    # the engine's pid, taken again by another process after the engine ended: its start time differs
    want[0] = (proc.pid, start + 1)
    with pytest.raises(refused, match="another process now"):
        docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=10).ping()
    assert "another process now" in heard[-1]
    want[0] = (proc.pid, start)  # the control: the process that was started answers
    assert docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=10).ping() is True
    assert os.getpid() != proc.pid
