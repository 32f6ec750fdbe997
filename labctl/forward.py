"""The lab's registries under the same address inside the engine's network namespace.

A rootless engine has its own loopback: ``127.0.0.1:5100`` inside it is not the host's. This small
forwarder runs *inside* that namespace (``nsenter`` into RootlessKit's user and network namespaces,
as the lab's account) and passes each connection on to the host's loopback (slirp4netns's
``10.0.2.2``), so ``docker pull 127.0.0.1:5100/...`` and the kernel's HTTP requests name the same
registry. It binds 127.0.0.1 only: containers on the engine's bridge cannot reach it.

    python -m labctl.forward PORT [PORT ...]
"""

from __future__ import annotations

import asyncio
import sys

__all__ = ["TARGET", "serve"]

TARGET = "10.0.2.2"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _handler(port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(TARGET, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle


async def serve(ports: list[int]) -> None:
    servers = [await asyncio.start_server(_handler(p), "127.0.0.1", p) for p in ports]
    print(f"forwarding 127.0.0.1:{{{','.join(map(str, ports))}}} -> {TARGET}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(serve([int(a) for a in sys.argv[1:] if a.isdigit()]))
