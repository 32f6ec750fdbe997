"""The classroom's one relay between the host's loopback and every class member's network namespace.

Each member's server (JupyterLab, kernels, terminals, their rootless engine, their registry) runs in a
network namespace of its own that root made (``asroot.classroom_netns``): it has only ``lo``, so the
engine's slirp4netns ``10.0.2.2`` is that namespace's loopback, and published ports land there too.
Only three things cross, all through this process:

* **outward**, one port per member: the host's ``127.0.0.1:P`` (where the Hub's proxy sends
  ``/user/NAME/``) to ``127.0.0.1:P`` inside that member's namespace (their JupyterLab);
* **inward**, the same ports in every namespace: ``127.0.0.1:HUB_API`` (the server talks to the Hub)
  and ``127.0.0.1:MIRROR`` (the engine pulls from the class's read-only course mirror) to the host's.

Root starts it: the listening sockets inside each namespace come from the project's one way to listen
in another namespace (:func:`labcore.netns.listen_inside`), and one thread per namespace enters it
(``setns``); then the whole process drops to the hub account (``--user``). A socket belongs to the
namespace it was made in, so each thread keeps making the namespace's outgoing sockets, without any
privilege left. Bytes pass through the project's one pump (:func:`labcore.netns.splice`).

One member cannot starve the others of it: each namespace may hold ``MAX_PER_NAMESPACE`` connections
each way at once (one more is closed at once, nobody waits), a connection with no byte either way for
``IDLE_SECONDS`` is closed (JupyterLab's kernel and terminal websockets ping every 30 s, jupyter_server's
``ws_ping_interval``; an hour is also the Hub's idle culler's), and the process may open enough files
for every namespace's share (``RLIMIT_NOFILE``, raised while it is root).

Nor can a third party starve a member before they log in: anyone may send requests to ``/user/NAME/``
(the member's server answers them, with a refusal), and held open (a body that never ends, a reply never
read) they would fill that member's share. So one client may hold at most ``MAX_PER_CLIENT`` of a
member's outward connections. The client is the address the Hub's proxy saw, the last entry of the
``X-Forwarded-For`` it adds (configurable-http-proxy's ``xfwd``), believed only on a connection a process
of this relay's own account opened (the proxy runs as the hub account; the owner is read from
``/proc/thread-self/net/tcp``); any other connection is its own uid's client. Each request gets a
connection of its own (``Connection: close`` on its way in: the proxy keeps connections open for the next
request of any client, which would carry it under the first one's name); a websocket keeps its upgrade.

    python -m asroot.classroom_relay --user dlhub --inward 8081 --inward 5200 /run/netns/X=8400 ...
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import os
import pwd
import resource
import socket
import sys
from labcore import safefs
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from labcore.netns import listen_inside, splice

__all__ = ["IDLE_SECONDS", "MAX_PER_CLIENT", "MAX_PER_NAMESPACE", "Namespace", "client_of", "main", "one_request",
           "parse_targets"]

CLONE_NEWNET = 0x40000000
LOOPBACK = "127.0.0.1"
MAX_PER_NAMESPACE = 64  # open connections each way per member (two files each in this process)
MAX_PER_CLIENT = 24  # of one member's outward share, what one client (one address at the proxy) may hold
IDLE_SECONDS = 3600.0
HEAD_SECONDS = 3.0  # for the proxy's request head (it sends it whole, at once)
MAX_WAITING = 64  # per member: connections whose request head has not come yet; a new one pushes out the oldest


def _setns(path: str) -> None:
    fd = safefs.open_kernel(path)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _listener(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((LOOPBACK, port))
    s.listen(128)
    s.setblocking(False)
    return s


def _new_socket() -> socket.socket:
    s = socket.socket()
    s.setblocking(False)
    return s


class Namespace:
    """A member's network namespace, as one thread of this process that lives in it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=os.path.basename(path), initializer=_setns,
                                        initargs=(path,))
        self.open = {"out": 0, "in": 0}  # connections held now, per direction (the loop's thread only)
        self.clients: dict[str, int] = {}  # outward connections held now, per client
        self.waiting: collections.deque[asyncio.StreamWriter] = collections.deque()  # outward, before their head

    def call(self, fn: Any, *args: Any) -> Future[Any]:
        return self._pool.submit(fn, *args)


def _limited(ns: Namespace, way: str, handle: Any) -> Any:
    """``handle`` for at most ``MAX_PER_NAMESPACE`` connections of ``ns`` at once; more are closed at once."""
    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if ns.open[way] >= MAX_PER_NAMESPACE:
            writer.close()
            return
        ns.open[way] += 1
        try:
            await handle(reader, writer)
        finally:
            ns.open[way] -= 1
            writer.close()

    return limited


def _tcp_owner(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The uid owning the IPv4 socket bound to ``local`` and connected to ``remote`` (this thread's
    network namespace), or None."""
    def hexaddr(addr: tuple[str, int]) -> str:
        return f"{socket.inet_aton(addr[0])[::-1].hex().upper()}:{addr[1]:04X}"

    want = (hexaddr(local), hexaddr(remote))
    try:
        table = safefs.read_kernel("/proc/thread-self/net/tcp", limit=64 << 20)  # ~150 bytes a socket
    except OSError:
        return None
    for line in table.splitlines()[1:]:
        f = line.split()
        if len(f) > 7 and (f[1], f[2]) == want:
            return int(f[7])
    return None


def client_of(head: bytes, trusted: bool, fallback: str) -> str:
    """Who sent this request: the last ``X-Forwarded-For`` entry (the one the proxy added) when the
    connection is the proxy's (``trusted``), else ``fallback``.

    >>> client_of(b"GET / HTTP/1.1\\r\\nX-Forwarded-For: 1.2.3.4, 10.0.0.7\\r\\n\\r\\n", True, "uid 0")
    '10.0.0.7'
    >>> client_of(b"GET / HTTP/1.1\\r\\nX-Forwarded-For: 10.0.0.7\\r\\n\\r\\n", False, "uid 1000")
    'uid 1000'
    """
    if trusted:
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-forwarded-for" and value.strip():
                return value.rsplit(b",", 1)[-1].strip().decode("latin-1")[:64]
    return fallback


def one_request(head: bytes) -> bytes:
    """The request head with ``Connection: close`` (the connection carries this request only), unless it
    asks for an upgrade (a websocket: the connection is then that websocket's).

    >>> one_request(b"GET /x HTTP/1.1\\r\\nHost: h\\r\\nConnection: keep-alive\\r\\n\\r\\n")
    b'GET /x HTTP/1.1\\r\\nHost: h\\r\\nConnection: close\\r\\n\\r\\n'
    """
    lines = head[:-4].split(b"\r\n")
    names = [line.partition(b":")[0].strip().lower() for line in lines]
    if b"upgrade" in names[1:]:
        return head
    kept = [line for line, name in zip(lines, names) if name not in (b"connection", b"keep-alive")]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


async def _outward(ns: Namespace, port: int, listener: socket.socket) -> asyncio.Server:
    """Host ``127.0.0.1:port`` -> ``127.0.0.1:port`` inside ``ns``; one request per connection, at most
    ``MAX_PER_CLIENT`` of them per client at once (a connection over that is closed at once)."""
    loop = asyncio.get_running_loop()

    async def handle(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        # the table's scan grows with the host's sockets: off the loop that carries every member's traffic
        uid = await loop.run_in_executor(None, _tcp_owner, peer, local) if peer and local else None
        client = client_of(head, uid == os.geteuid(), f"uid {uid}")
        if ns.clients.get(client, 0) >= MAX_PER_CLIENT:
            writer.close()
            return
        ns.clients[client] = ns.clients.get(client, 0) + 1
        try:
            s = await asyncio.wrap_future(ns.call(_new_socket))
            try:
                await loop.sock_connect(s, (LOOPBACK, port))
                up = await asyncio.open_connection(sock=s)
            except OSError:
                s.close()
                writer.close()
                return
            up[1].write(one_request(head))
            await splice((reader, writer), up, idle_seconds=IDLE_SECONDS)
        finally:
            ns.clients[client] -= 1
            if not ns.clients[client]:
                del ns.clients[client]

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection counts against the member's share only once its head is in and names its client:
        # heads that do not come (a request whose body never follows is held back by the proxy) wait in a
        # pool of their own, where a new one pushes out the oldest, so stalled requests cannot fill the share.
        if len(ns.waiting) >= MAX_WAITING:
            ns.waiting.popleft().transport.abort()
        ns.waiting.append(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_SECONDS)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        finally:
            if writer in ns.waiting:
                ns.waiting.remove(writer)
        if ns.open["out"] >= MAX_PER_NAMESPACE:
            writer.close()
            return
        ns.open["out"] += 1
        try:
            await handle(head, reader, writer)
        finally:
            ns.open["out"] -= 1
            writer.close()

    return await asyncio.start_server(accept, sock=listener)


async def _inward(ns: Namespace, port: int, listener: socket.socket) -> asyncio.Server:
    """``127.0.0.1:port`` inside a namespace (``listener`` was made there) -> the host's."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            writer.close()
            return
        await splice((reader, writer), up, idle_seconds=IDLE_SECONDS)

    return await asyncio.start_server(_limited(ns, "in", handle), sock=listener)


def nofile_needed(namespaces: int, inward: int) -> int:
    """Files for every namespace's full share of connections (two each), those waiting for their head, its
    listeners, and some spare."""
    return (2 * MAX_PER_NAMESPACE * 2 + MAX_WAITING) * namespaces + namespaces * (1 + inward) + 256


def raise_nofile(want: int) -> int:
    """Root, before dropping: ``RLIMIT_NOFILE`` at least ``want`` (at most ``fs.nr_open``; where root
    may not raise the hard limit, e.g. in a container without CAP_SYS_RESOURCE, up to it). Returns the
    soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        ceiling = int(safefs.read_kernel("/proc/sys/fs/nr_open"))
    except (OSError, ValueError):
        ceiling = 1 << 20
    new = min(max(want, soft, 1024), ceiling)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, new if hard == resource.RLIM_INFINITY else max(new, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(new, hard)), hard))
    got = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if got < want:
        print(f"open files limited to {got} (wanted {want}): a full class may be refused connections", flush=True)
    return got


def parse_targets(words: list[str]) -> list[tuple[str, int]]:
    """``["/run/netns/x=8400"]`` -> ``[("/run/netns/x", 8400)]``.

    >>> parse_targets(["/run/netns/dockerlab-classroom-learner1=8400"])
    [('/run/netns/dockerlab-classroom-learner1', 8400)]
    """
    out = []
    for w in words:
        path, _, port = w.rpartition("=")
        if not path.startswith("/run/netns/") or not port.isdigit():
            raise SystemExit(f"not a namespace and port: {w!r}")
        out.append((path, int(port)))
    return out


def _drop_to(user: str) -> None:
    pw = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)  # glibc applies it to every thread of the process
    if os.getuid() != pw.pw_uid or os.geteuid() != pw.pw_uid:
        raise SystemExit("could not drop to the hub account")


async def _serve(targets: list[tuple[str, int]], inward: list[int], user: str) -> None:
    servers = []
    spaces = [Namespace(path) for path, _ in targets]
    host_listeners = [_listener(port) for _, port in targets]
    inner: list[list[tuple[int, socket.socket]]] = []
    with ThreadPoolExecutor(4) as pool:  # a short-lived child per namespace: a few at a time
        made = list(pool.map(lambda ns: listen_inside(ns.path, inward), spaces))
    for ns, (listening, failed) in zip(spaces, made):
        for p, why in failed.items():  # the member took the port first (a restart while their server runs)
            print(f"{ns.path}: 127.0.0.1:{p} is taken inside ({why}); that member's server cannot "
                  "reach it until their server stops and the relay restarts", flush=True)
        inner.append([(p, listening[p]) for p in inward if p in listening])
    for ns in spaces:  # a failed setns raises here (the thread pool breaks): nothing is served then;
        ns.call(lambda: None).result()  # every thread exists (and is in its namespace) before the privileges go
    raise_nofile(nofile_needed(len(spaces), len(inward)))
    _drop_to(user)
    for ns, (_, port), listener, socks in zip(spaces, targets, host_listeners, inner):
        servers.append(await _outward(ns, port, listener))
        for p, s in socks:
            servers.append(await _inward(ns, p, s))
    print(f"relaying {len(targets)} namespaces (inward {', '.join(map(str, inward))}) as {user}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="asroot.classroom_relay")
    ap.add_argument("--user", required=True)
    ap.add_argument("--inward", type=int, action="append", default=[])
    ap.add_argument("targets", nargs="*")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the classroom relay is started by root (it enters the members' namespaces, then drops)")
    asyncio.run(_serve(parse_targets(args.targets), args.inward, args.user))


if __name__ == "__main__":
    main(sys.argv[1:])
