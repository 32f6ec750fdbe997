"""The classroom's parts a member could abuse, each tried directly on the part (no classroom needed: a
few seconds in all, beside tests/host/test_classroom.py's end-to-end run): the relay, the Hub's login,
the members' run directories, root's writes into the hub account's directories, collect, the release
and mirror copies, the progress page."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import classroom_netns, classroom_relay

PREFIX = f"dltest-hard{os.getpid()}"


@pytest.fixture
def two_namespaces() -> Iterator[list[str]]:
    paths = [str(classroom_netns.ensure(PREFIX, m)) for m in ("a", "b")]
    yield paths
    for m in ("a", "b"):
        classroom_netns.remove(PREFIX, m)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _talks(port: int) -> bool:
    """A connection through the relay that gets its bytes back."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        w.write(b"ping")
        got = await asyncio.wait_for(r.read(4), 10)
    except (OSError, asyncio.TimeoutError):
        return False
    w.close()
    return got == b"ping"


def test_relay_one_members_held_connections_leave_the_others_working(two_namespaces, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(classroom_relay, "MAX_PER_NAMESPACE", 8)

    async def run() -> None:
        ports = []
        for path in two_namespaces:  # each member's "JupyterLab": an echo server inside their namespace
            ns = classroom_relay.Namespace(path)
            host = classroom_relay._listener(0)  # noqa: SLF001
            port = host.getsockname()[1]
            inner = ns.call(classroom_relay._listener, port).result()  # noqa: SLF001
            await asyncio.start_server(_echo, sock=inner)
            await classroom_relay._outward(ns, port, host)  # noqa: SLF001
            ports.append(port)
        a, b = ports
        held = []
        for _ in range(8):  # member A holds their whole share open
            r, w = await asyncio.open_connection("127.0.0.1", a)
            w.write(b"x")
            assert await asyncio.wait_for(r.read(1), 10) == b"x"
            held.append((r, w))
        r, w = await asyncio.open_connection("127.0.0.1", a)  # one more: closed at once, nobody waits
        assert await asyncio.wait_for(r.read(1), 10) == b""
        assert all([await _talks(b) for _ in range(5)]), "member B's connections failed while A held theirs"
        held[0][1].close()
        await asyncio.sleep(0.2)
        assert await _talks(a), "a slot A freed is not usable again"
        monkeypatch.setattr(classroom_relay, "IDLE_SECONDS", 0.5)
        r, w = await asyncio.open_connection("127.0.0.1", b)  # idle: the relay closes it
        w.write(b"y")
        assert await asyncio.wait_for(r.read(1), 10) == b"y"
        assert await asyncio.wait_for(r.read(1), 10) == b"", "an idle connection stayed open"

    asyncio.run(run())


def test_relay_raises_its_open_files_limit_for_every_namespaces_share() -> None:
    """From a soft limit of 128 (the probe's starving relay): as many as 200 namespaces need, or as
    many as this machine lets root have (a container may cap the hard limit)."""
    code = ("import resource\nfrom labctl import classroom_relay as r\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "print(r.raise_nofile(r.nofile_needed(200, 2)), r.nofile_needed(200, 2), "
            "resource.getrlimit(resource.RLIMIT_NOFILE)[1])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    got, need, hard = map(int, out[-3:])
    assert need > 200 * 4 * classroom_relay.MAX_PER_NAMESPACE
    assert got >= min(need, hard) > 128
