"""Root's side of the one way to listen inside another network namespace (labcore.netns.listen_inside,
no user namespace): the grading relay's listener is in the sandbox's namespace, not the host's, and
passes connections on to the host's port. A root-made namespace of this test's own stands in for a
sandbox's holder; no lab needed."""

from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.namespaces import same_netns, unshared


@pytest.fixture
def holder() -> Iterator[int]:
    with unshared("--net") as pid:  # root's: no user namespace of its own
        yield pid


class _Hello(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"from the host")


def test_the_grading_relay_listens_in_the_sandbox_and_reaches_the_hosts_port(holder: int, tmp_path: Path) -> None:
    host = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hello)
    port = host.server_address[1]
    threading.Thread(target=host.serve_forever, daemon=True).start()
    log = tmp_path / "relay.log"
    with open(log, "wb") as out:
        relay = subprocess.Popen([sys.executable, "-m", "asroot.grading.relay", str(holder), str(port)], stdout=out,
                                 stderr=out, cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 30
        while b"relaying" not in log.read_bytes():
            assert relay.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        code = ("import socket, sys\ns = socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)\n"
                "print(s.recv(64).decode())\n")
        inside = subprocess.run(["nsenter", f"--net=/proc/{holder}/ns/net", sys.executable, "-I", "-c", code,
                                 str(port)], capture_output=True, text=True, timeout=30)
        assert inside.stdout.strip() == "from the host", inside.stderr
        # the host's port is the host server's, not the relay's: the relay bound nothing here
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            assert s.recv(64) == b"from the host"
        # and the relay never entered the namespace itself
        assert same_netns(relay.pid)
    finally:
        relay.kill()
        relay.wait()
        host.shutdown()
        host.server_close()
