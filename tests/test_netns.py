"""labcore.netns: the project's one byte pump (pipe/splice) and its one way to listen inside another
network namespace (listen_inside/bind_inside). No lab needed: a namespace of this test's own
(``unshare -Urn``, which needs no privilege) stands in for a rootless engine's."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from labcore import netns
from tests.support.namespaces import same_netns, unshared

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None,
                                reason="util-linux's unshare and nsenter are needed")

T = TypeVar("T")


def _run(scenario: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: the suite's Chromium tests keep playwright's loop running in
    the main thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


# -- the byte pump ---------------------------------------------------------------------------------

async def _upstream(handler):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _relay(up_port: int, **splice_args):  # type: ignore[no-untyped-def]
    """A relay on 127.0.0.1:<port> to the upstream, through splice with these arguments."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = await asyncio.open_connection("127.0.0.1", up_port)
        await netns.splice((reader, writer), up, **splice_args)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_splice_half_close_lets_the_answer_come_back_after_the_client_stops_writing() -> None:
    """``docker run -i``'s case: the client half-closes its side, the service answers after EOF."""
    async def upper_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client's half-close arrives
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    async def run() -> tuple[bytes, bytes]:
        up, up_port = await _upstream(upper_after_eof)
        answers = []
        for half_close in (True, False):
            relay, port = await _relay(up_port, half_close=half_close)
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"hello " * 50_000)  # more than one chunk
            await w.drain()
            w.write_eof()
            answers.append(await asyncio.wait_for(r.read(), 10))
            w.close()
            relay.close()
        up.close()
        return answers[0], answers[1]

    kept, closed = _run(run())
    assert kept == b"HELLO " * 50_000
    assert closed == b"", "without half_close the relay closes the way back at the client's EOF"


def test_splice_closes_a_connection_idle_either_way_and_keeps_a_busy_one() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def run() -> None:
        up, up_port = await _upstream(echo)
        relay, port = await _relay(up_port, idle_seconds=0.8)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(12):  # busy for longer than the idle time, a byte each 0.1 s: stays open
            w.write(b"x")
            assert await asyncio.wait_for(r.read(1), 10) == b"x"
            await asyncio.sleep(0.1)
        assert await asyncio.wait_for(r.read(1), 10) == b"", "an idle connection stayed open"
        w.close()
        relay.close()
        up.close()

    _run(run())


def test_pipe_closes_its_writer_at_the_end_unless_half_closing() -> None:
    async def run() -> list[bool]:
        got = []
        for half_close in (False, True):
            src = asyncio.StreamReader()
            src.feed_data(b"abc")
            src.feed_eof()
            sink_r, sink_w = socket.socketpair()
            _, writer = await asyncio.open_connection(sock=sink_w)
            await netns.pipe(src, writer, half_close=half_close)
            got.append(writer.is_closing())
            assert sink_r.recv(16) == b"abc"
            writer.close()
            sink_r.close()
        return got

    assert _run(run()) == [True, False]


# -- listening inside another network namespace ----------------------------------------------------

@pytest.fixture
def other_namespace() -> Iterator[int]:
    """A process in a user + network namespace of its own (no privilege needed)."""
    with unshared("-Urn") as pid:
        yield pid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connect_inside(pid: int, port: int) -> str:
    """Connect to 127.0.0.1:port from inside ``pid``'s namespaces; what the listener sent, or the error."""
    code = ("import socket, sys\ntry:\n    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)\n"
            "    print(s.recv(16).decode())\nexcept OSError as e:\n    print('error', e.errno)\n")
    out = subprocess.run(["nsenter", "-U", "--preserve-credentials", "-n", "-t", str(pid), sys.executable, "-I", "-c",
                          code, str(port)], capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or out.stderr.strip()


def test_a_socket_bound_inside_listens_in_the_target_namespace_and_not_in_the_hosts(other_namespace: int) -> None:
    port = _free_port()
    (listener,) = netns.bind_inside(other_namespace, [port])
    with listener:
        assert listener.getsockname() == ("127.0.0.1", port)
        # not on the host's loopback: nothing answers there, and the port is still free here
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), 5).close()
        with socket.socket() as host_side:
            host_side.bind(("127.0.0.1", port))
        # inside, it is this listener that answers (accepted here, in this process)
        answered: list[str] = []

        def accept() -> None:
            listener.settimeout(20)
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"inside")
                answered.append("yes")

        import threading

        t = threading.Thread(target=accept)
        t.start()
        assert _connect_inside(other_namespace, port) == "inside"
        t.join(20)
        assert answered == ["yes"]


def test_listen_inside_reports_a_port_taken_inside_and_binds_the_others(other_namespace: int) -> None:
    taken, free = _free_port(), _free_port()
    first, failed = netns.listen_inside(f"/proc/{other_namespace}/ns/net", [taken],
                                        userns=f"/proc/{other_namespace}/ns/user")
    assert set(first) == {taken} and failed == {}
    with first[taken]:
        socks, failed = netns.listen_inside(f"/proc/{other_namespace}/ns/net", [taken, free],
                                            userns=f"/proc/{other_namespace}/ns/user")
        assert set(socks) == {free}
        assert set(failed) == {taken} and failed[taken] == "Address already in use"
        socks[free].close()
        with pytest.raises(OSError, match="inside the engine's namespace"):
            netns.bind_inside(other_namespace, [taken])


def test_listen_inside_a_namespace_it_may_not_enter_raises(tmp_path: Path) -> None:
    not_a_namespace = tmp_path / "net"
    not_a_namespace.write_text("")
    with pytest.raises(OSError, match=f"could not listen .* inside {not_a_namespace}"):
        netns.listen_inside(not_a_namespace, [_free_port()], timeout=10)


def test_the_forwarder_serves_the_hosts_port_inside_the_engine_from_outside_it(other_namespace: int,
                                                                               tmp_path: Path) -> None:
    """``python -m labcore.netns STATE_DIR PORT`` (``RootlessEngine.forward``): 127.0.0.1:PORT inside the
    namespace reaches 127.0.0.1:PORT of the forwarder's own, and the forwarder does not live inside."""
    import socketserver
    import threading

    class Hello(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"host")

    host = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Hello)
    port = host.server_address[1]
    threading.Thread(target=host.serve_forever, daemon=True).start()
    (tmp_path / "child_pid").write_text(str(other_namespace))  # as RootlessKit keeps it
    log = tmp_path / "forward.log"
    with open(log, "wb") as out:
        fwd = subprocess.Popen([sys.executable, "-m", "labcore.netns", str(tmp_path), str(port)], stdout=out,
                               stderr=out, cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 30
        while b"forwarding" not in log.read_bytes():
            assert fwd.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert _connect_inside(other_namespace, port) == "host"
        assert same_netns(fwd.pid)
    finally:
        fwd.kill()
        fwd.wait()
        host.shutdown()
        host.server_close()
