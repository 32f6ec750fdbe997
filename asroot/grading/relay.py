"""The course's read-only mirror inside a grading sandbox's network namespace (root's helper).

    python -m asroot.grading.relay HOLDER_PID PORT

Listens on ``127.0.0.1:PORT`` *inside* the sandbox's namespace (:func:`labcore.netns.listen_inside`: a
short-lived child makes the socket there; this process never enters the namespace) and passes each
connection on to the host's ``127.0.0.1:PORT``, the lab's mirror. The sandbox sees that one port of the
host and nothing else; the account cannot stop or replace this process (it is root's, outside the
sandbox's cgroup).
"""

from __future__ import annotations

import asyncio
import socket
import sys

from labcore.netns import handler, listen_inside


def listen_in_sandbox(holder: int, port: int) -> socket.socket:
    socks, failed = listen_inside(f"/proc/{holder}/ns/net", [port])
    if failed:
        raise OSError(f"could not listen on 127.0.0.1:{port} inside the sandbox: {failed[port]}")
    return socks[port]


async def serve(sock: socket.socket, port: int) -> None:
    server = await asyncio.start_server(handler(port, host="127.0.0.1"), sock=sock)
    print(f"relaying 127.0.0.1:{port} of the sandbox to the host's", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    holder, port = int(sys.argv[1]), int(sys.argv[2])
    asyncio.run(serve(listen_in_sandbox(holder, port), port))
