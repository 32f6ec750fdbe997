"""labctl.activation: a service that starts on its first connection and then takes the address over.

The service here is a real one of the smallest kind (an echo server on a Unix socket, started by
``start()``); the classroom's use of it (a learner's engine) is tested in tests/host/test_classroom.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labctl import activation
from labctl.activation import OnDemand


def _run(scenario: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` in a thread of its own: the suite's Chromium tests keep playwright's loop running in
    the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario).result()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read()  # until the client's half-close
    writer.write(b"echo:" + data)
    await writer.drain()
    writer.close()


async def _ask(path: Path, msg: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(msg)
    writer.write_eof()  # half-close: the answer must still come back
    out = await reader.read()
    writer.close()
    return out


def test_the_first_connection_starts_the_service_which_then_owns_the_address(tmp_path: Path) -> None:
    address, own = tmp_path / "svc.sock", tmp_path / "svc-own.sock"
    starts: list[int] = []

    async def start() -> Path:
        starts.append(1)
        await asyncio.sleep(0.3)  # a service that takes a moment: clients arriving meanwhile wait for it
        await asyncio.start_unix_server(_echo, path=str(own))
        return own

    async def scenario() -> None:
        activation.GRACE_SECONDS = 0.2
        on_demand = OnDemand(address, start)
        await on_demand.listen()
        assert oct(os.stat(address).st_mode & 0o777) == "0o600"
        assert not starts, "nothing starts before someone connects"
        placeholder = os.stat(address).st_ino
        answers = await asyncio.gather(*(_ask(address, f"hi {i}".encode()) for i in range(3)))
        assert answers == [b"echo:hi 0", b"echo:hi 1", b"echo:hi 2"]
        assert starts == [1], "three clients at once start the service once"
        assert os.stat(address).st_ino != placeholder and not own.exists(), "the service's socket took the address"
        await asyncio.sleep(0.4)  # the grace period is over: the old listener is gone
        assert on_demand.handed_over
        assert await _ask(address, b"later") == b"echo:later"
        assert starts == [1]
        on_demand.close()
        assert address.exists(), "closing the listener after the hand-over leaves the service's address alone"

    _run(scenario())


def test_a_failed_start_closes_the_client_and_the_next_connection_tries_again(tmp_path: Path) -> None:
    address, own = tmp_path / "svc.sock", tmp_path / "svc-own.sock"
    attempts: list[int] = []

    async def start() -> Path:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("the engine did not start")
        await asyncio.start_unix_server(_echo, path=str(own))
        return own

    async def scenario() -> None:
        on_demand = OnDemand(address, start)
        await on_demand.listen()
        assert await _ask(address, b"first") == b"", "a failed start: the client sees the connection close"
        assert await _ask(address, b"second") == b"echo:second"
        assert len(attempts) == 2
        on_demand.close()

    _run(scenario())


def test_closing_before_any_connection_removes_the_placeholder(tmp_path: Path) -> None:
    address = tmp_path / "svc.sock"

    async def start() -> Path:
        raise AssertionError("never started")

    async def scenario() -> None:
        on_demand = OnDemand(address, start)
        await on_demand.listen()
        on_demand.close()

    _run(scenario())
    assert not address.exists()
