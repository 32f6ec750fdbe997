"""The lab's registries under the same address inside the engine's network namespace.

A rootless engine has its own loopback: ``127.0.0.1:5100`` inside it is not the host's. This small
forwarder listens on ``127.0.0.1:PORT`` *inside* that namespace (:func:`bind_inside`, through
RootlessKit's child, whose pid RootlessKit keeps in ``STATE_DIR/child_pid``) and passes each connection
on to ``127.0.0.1:PORT`` of its own namespace, the host's (the account's launcher's: inside a grading
sandbox, the sandbox's), so ``docker pull 127.0.0.1:5100/...`` and the kernel's HTTP requests name the
same registry. The process itself stays outside, with no capability in the engine's user namespace;
its sockets are bound to 127.0.0.1 inside: containers on the engine's bridge cannot reach them.

    python -m labcore.netns STATE_DIR PORT [PORT=/path/to/registry.sock ...]

``PORT`` goes to the host's ``127.0.0.1:PORT``; ``PORT=/path`` to a Unix socket instead (a
classroom learner's registries are sockets only their owner can open).

A classroom learner's server needs no process of this kind: it serves the same listeners with
:func:`handler` itself (``classroom.server``).

The project's one way to listen inside another network namespace is :func:`bind_inside` (the learner's
server into their engine's, root's grading relay into a sandbox's, root's classroom relay into each
member's): no process of ours ever changes its own namespace, and it works without privilege through
the target's user namespace. Its one byte pump is :func:`pipe`, two of them :func:`splice`: every
relay and forwarder of the project passes bytes with it (this forwarder, the classroom's relays,
:mod:`labctl.activation`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Idle", "bind_inside", "handler", "listen_inside", "pipe", "serve", "splice"]

CHUNK = 1 << 16
NSENTER = "/usr/bin/nsenter"  # absolute: root runs it too


class Idle:
    """The idle clock of one connection, shared by its two directions: no byte either way for
    ``seconds`` ends both."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() - self.last >= self.seconds


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, half_close: bool = False,
               idle: Idle | None = None) -> None:
    """Copy ``reader`` to ``writer`` (one direction of a connection) until ``reader`` ends, the
    connection breaks, or ``idle`` expires.

    ``half_close``: at the end of ``reader`` pass the half-close on (``write_eof``) and leave ``writer``
    open, the other direction may go on (``docker run -i`` closes its stdin that way); otherwise
    ``writer`` is closed whenever this direction ends. ``idle``: the connection's clock, touched by every
    byte either way; this direction ends once it expires."""
    try:
        while True:
            if idle is None:
                data = await reader.read(CHUNK)
            else:
                try:
                    data = await asyncio.wait_for(reader.read(CHUNK), idle.seconds / 4)
                except asyncio.TimeoutError:
                    if idle.expired():
                        break
                    continue
            if not data:
                if half_close and writer.can_write_eof():
                    writer.write_eof()
                    return
                break
            if idle is not None:
                idle.touch()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        if half_close:
            return
    if not half_close:
        writer.close()


async def splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], *, half_close: bool = False,
                 idle_seconds: float | None = None) -> None:
    """Both directions of a connection (``client`` <-> ``upstream``) with :func:`pipe`, until both end;
    with ``idle_seconds``, until no byte has passed either way for that long (then both end at once).
    Both writers are closed when it returns."""
    idle = Idle(idle_seconds) if idle_seconds is not None else None
    a = asyncio.ensure_future(pipe(client[0], upstream[1], half_close=half_close, idle=idle))
    b = asyncio.ensure_future(pipe(upstream[0], client[1], half_close=half_close, idle=idle))
    try:
        await asyncio.wait((a, b), return_when=asyncio.FIRST_COMPLETED)
        if idle is not None and idle.expired():  # idle: the other direction ends now too
            for t in (a, b):
                t.cancel()
        await asyncio.gather(a, b, return_exceptions=True)
    finally:
        for t in (a, b):
            t.cancel()
        client[1].close()
        upstream[1].close()


def handler(port: int, sock: str = "", host: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
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
        await splice((reader, writer), (up_reader, up_writer))

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


async def serve(state_dir: Path, targets: list[tuple[int, str]]) -> None:
    """Listen inside the engine whose RootlessKit state is ``state_dir``; pass on to this namespace."""
    child = int((state_dir / "child_pid").read_text())
    listeners = bind_inside(child, [p for p, _ in targets])
    servers = [await asyncio.start_server(handler(p, s), sock=sk) for (p, s), sk in zip(targets, listeners)]
    shown = ", ".join(f"{p} -> {s or '127.0.0.1'}" for p, s in targets)
    print(f"forwarding 127.0.0.1 inside the engine: {shown}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# Run by the nsenter child: listen on 127.0.0.1:PORT for each PORT, send the sockets back over FD,
# with one line per port that could not be bound ("PORT error").
_BIND = """import socket, sys
back = socket.socket(fileno=int(sys.argv[1]))
socks, failed = [], []
for port in map(int, sys.argv[2:]):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
    except OSError as e:
        s.close()
        failed.append(f"{port} {e.strerror}")
        continue
    socks.append(s)
socket.send_fds(back, ["\\n".join(failed).encode() or b"ok"], [s.fileno() for s in socks])
"""


def listen_inside(netns: str | Path, ports: list[int], *, userns: str | Path | None = None,
                  timeout: float = 30) -> tuple[dict[int, socket.socket], dict[int, str]]:
    """Listening sockets on ``127.0.0.1:PORT`` inside the network namespace ``netns`` (a namespace
    file: ``/proc/PID/ns/net``, ``/run/netns/NAME``), made by a short-lived ``nsenter`` child and
    passed back here over a socket pair (``SCM_RIGHTS``): no process of ours enters the namespace, and
    a socket keeps the namespace it was made in. ``userns``: enter that user namespace first (one of
    ours, e.g. RootlessKit's child's: no privilege needed); without it, entering takes root.

    Returns the sockets by port, and why the others could not be bound (taken inside, ...); OSError
    when the namespace could not be entered at all."""
    want = [int(p) for p in ports]
    if not want:
        return {}, {}
    ours, theirs = socket.socketpair()
    with ours, theirs:
        enter = [f"--user={userns}", "--preserve-credentials"] if userns else []
        argv = [NSENTER if os.path.exists(NSENTER) else "nsenter", *enter, f"--net={netns}", "--",
                sys.executable, "-I", "-c", _BIND, str(theirs.fileno()), *map(str, want)]
        child = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        theirs.close()
        ours.settimeout(timeout)
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ours, 1 << 16, len(want))
        except OSError:
            msg, fds = b"", []
        try:
            err = child.communicate(timeout=timeout)[1].decode(errors="replace").strip()
        except subprocess.TimeoutExpired:
            child.kill()
            err = child.communicate()[1].decode(errors="replace").strip()
    socks = [socket.socket(fileno=fd) for fd in fds]
    failed: dict[int, str] = {}
    if msg != b"ok":
        for line in msg.decode(errors="replace").splitlines():
            port, _, why = line.partition(" ")
            if port.isdigit():
                failed[int(port)] = why
    bound = [p for p in want if p not in failed]
    if not msg or len(bound) != len(socks):  # the child could not enter, or never answered
        for s in socks:
            s.close()
        raise OSError(f"could not listen on {want} inside {netns}: {err[-300:]}")
    return dict(zip(bound, socks)), failed


def bind_inside(pid: int, ports: list[int], timeout: float = 30) -> list[socket.socket]:
    """Listening sockets on ``127.0.0.1:PORT`` inside the network namespace of ``pid`` (RootlessKit's
    child, whose user namespace is ours: entering it needs no privilege), all of them or OSError."""
    socks, failed = listen_inside(f"/proc/{pid}/ns/net", ports, userns=f"/proc/{pid}/ns/user", timeout=timeout)
    if failed:
        for s in socks.values():
            s.close()
        raise OSError(f"could not listen on {ports} inside the engine's namespace: "
                      + "; ".join(f"{p}: {why}" for p, why in failed.items()))
    return [socks[p] for p in ports]


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), parse(sys.argv[2:])))
