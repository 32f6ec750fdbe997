"""The lab's registries under the same address inside the engine's network namespace.

A rootless engine has its own loopback: ``127.0.0.1:5100`` inside it is not the host's. This small
forwarder runs *inside* that namespace (``nsenter`` into RootlessKit's user and network namespaces,
as the lab's account) and passes each connection on to the host's loopback (slirp4netns's
``10.0.2.2``), so ``docker pull 127.0.0.1:5100/...`` and the kernel's HTTP requests name the same
registry. It binds 127.0.0.1 only: containers on the engine's bridge cannot reach it.

    python -m labcore.netns STATE_DIR PORT [PORT=/path/to/registry.sock ...]

``PORT`` goes to the host's ``127.0.0.1:PORT``; ``PORT=/path`` to a Unix socket instead, which needs
no host loopback at all (a classroom learner's engine runs with RootlessKit's host loopback off, so
its containers reach no other learner's port; the registries are sockets only their owner can open).

A classroom learner's server needs no process of this kind: :func:`bind_inside` opens the listening
sockets inside the engine's namespace (a short-lived ``nsenter`` child hands them over) and the server
serves them with :func:`handler` itself, connecting out from its own namespace.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

__all__ = ["TARGET", "bind_inside", "handler", "pipe", "serve"]

TARGET = "10.0.2.2"


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until either side closes (one direction of a connection;
    also the grading relay's, :mod:`asroot.grading.relay`)."""
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def handler(port: int, sock: str = "", host: str = TARGET):  # type: ignore[no-untyped-def]
    """A connection handler for ``asyncio.start_server`` that passes each connection on to
    ``host:port`` (or the unix socket ``sock``)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if sock:
                up_reader, up_writer = await asyncio.open_unix_connection(sock)
            else:
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return handle


def parse(args: list[str]) -> list[tuple[int, str]]:
    """``["5101", "5102=/run/r.sock"]`` -> ``[(5101, ""), (5102, "/run/r.sock")]``; other words are skipped.

    >>> parse(["/tmp/state", "5101", "5102=/run/r.sock"])
    [(5101, ''), (5102, '/run/r.sock')]
    """
    out = []
    for a in args:
        port, _, sock = a.partition("=")
        if port.isdigit():
            out.append((int(port), sock))
    return out


async def serve(targets: list[tuple[int, str]]) -> None:
    servers = [await asyncio.start_server(handler(p, s), "127.0.0.1", p) for p, s in targets]
    shown = ", ".join(f"{p} -> {s or TARGET}" for p, s in targets)
    print(f"forwarding 127.0.0.1: {shown}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# Run by the nsenter child: listen on 127.0.0.1:PORT for each PORT, send the sockets back over FD.
_BIND = """import socket, sys
back = socket.socket(fileno=int(sys.argv[1]))
socks = []
for port in map(int, sys.argv[2:]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    socks.append(s)
socket.send_fds(back, [b"ok"], [s.fileno() for s in socks])
"""


def bind_inside(pid: int, ports: list[int], timeout: float = 30) -> list[socket.socket]:
    """Listening sockets on ``127.0.0.1:PORT`` inside the network namespace of ``pid`` (RootlessKit's
    child, whose user namespace is ours: ``nsenter -U`` needs no privilege), made by a short-lived
    child and passed back here, so no process of ours has to stay in there."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        argv = ["nsenter", "-U", "--preserve-credentials", "-n", "-t", str(pid),
                sys.executable, "-I", "-c", _BIND, str(theirs.fileno()), *map(str, ports)]
        child = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        theirs.close()
        ours.settimeout(timeout)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(ours, 16, len(ports))
        except OSError:
            fds = []
        err = child.communicate(timeout=timeout)[1].decode(errors="replace").strip()
    if len(fds) != len(ports):
        raise OSError(f"could not listen on {ports} inside the engine's namespace: {err[-300:]}")
    return [socket.socket(fileno=fd) for fd in fds]


if __name__ == "__main__":
    asyncio.run(serve(parse(sys.argv[1:])))
