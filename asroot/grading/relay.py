"""The course's read-only mirror inside a grading sandbox's network namespace (root's helper).

    python -m asroot.grading.relay HOLDER_PID PORT

Binds ``127.0.0.1:PORT`` *inside* the sandbox's namespace (entered with ``setns`` only for that), then
goes back to the host's and passes each connection on to the host's ``127.0.0.1:PORT``, the lab's
mirror. The sandbox sees that one port of the host and nothing else; the account cannot stop or
replace this process (it is root's, outside the sandbox's cgroup).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys

from labcore import safefs
from labcore.netns import handler

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_inside(holder: int, port: int) -> socket.socket:
    home = safefs.open_kernel("/proc/self/ns/net")
    inside = safefs.open_kernel(f"/proc/{holder}/ns/net")
    try:
        _setns(inside)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
    finally:
        _setns(home)
        os.close(home)
        os.close(inside)
    return s


async def serve(sock: socket.socket, port: int) -> None:
    server = await asyncio.start_server(handler(port, host="127.0.0.1"), sock=sock)
    print(f"relaying 127.0.0.1:{port} of the sandbox to the host's", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    holder, port = int(sys.argv[1]), int(sys.argv[2])
    asyncio.run(serve(listen_inside(holder, port), port))
