"""A service that starts on its first connection: a Unix socket held open at the service's address
until someone connects, then the service starts and takes the address over.

A class of 60 learners who have not run a Docker command yet need no 60 engines: each learner's
server (``classroom_server``) listens on the path ``DOCKER_HOST`` names, and the first client (the
kernel's ``connect()``, a ``docker`` command in the terminal) starts the learner's engine. The engine
listens on a path of its own; once it answers, that path is renamed onto the address (``rename(2)``
replaces the listener's file atomically), so every later client talks to ``dockerd`` directly, with
nothing of ours in between. The few connections that arrived while the engine started are passed
on, both directions, half-closes included (``docker run -i`` closes its stdin that way), by the
project's one byte pump (:func:`labcore.netns.splice`).

The listener keeps accepting for a moment after the hand-over: a client that connected just before the
rename is in its backlog and is passed on too, not dropped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from labcore.netns import splice

__all__ = ["OnDemand"]

GRACE_SECONDS = 2.0  # how long the old listener still accepts after the hand-over


class OnDemand:
    """``OnDemand(path, start)``: listen on ``path``; the first connection awaits ``start()``, which starts
    the service and returns the path it listens on; that path then replaces ``path``.

    A failed start closes the waiting connections (their clients report the service unreachable) and
    the next connection tries again.
    """

    def __init__(self, path: Path, start: Callable[[], Awaitable[Path]]) -> None:
        self.path = path
        self._start = start
        self._server: asyncio.AbstractServer | None = None
        self._started: asyncio.Task[Path] | None = None
        self.handed_over = False

    async def listen(self) -> None:
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)  # the socket is its owner's alone from the first moment
        try:
            self._server = await asyncio.start_unix_server(self._connection, path=str(self.path))
        finally:
            os.umask(old)

    async def _activate(self) -> Path:
        own = await self._start()
        os.replace(own, self.path)
        self.handed_over = True
        asyncio.get_running_loop().call_later(GRACE_SECONDS, self.close)
        return own

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._started is None or (self._started.done() and self._started.exception() is not None):
            self._started = asyncio.ensure_future(self._activate())
        try:
            await asyncio.shield(self._started)
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.path))
        except Exception:  # noqa: BLE001 - the service did not start: its client sees the connection close
            writer.close()
            return
        await splice((reader, writer), (up_reader, up_writer), half_close=True)

    def close(self) -> None:
        """Stop listening (the address stays the service's once handed over)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if not self.handed_over:
            self.path.unlink(missing_ok=True)
