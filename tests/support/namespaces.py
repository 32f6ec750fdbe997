"""A process in network namespaces of a test's own (``unshare``), standing in for a rootless engine's
RootlessKit child or a grading sandbox's holder."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def same_netns(pid: int | str, other: int | str = "self") -> bool:
    a, b = (Path(f"/proc/{p}/ns/net").stat() for p in (pid, other))
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextmanager
def unshared(*flags: str) -> Iterator[int]:
    """The pid of a ``sleep`` in new namespaces (``unshare FLAGS``, e.g. ``-Urn``), its loopback up."""
    p = subprocess.Popen(["unshare", *flags, "sh", "-c", "ip link set lo up 2>/dev/null; exec sleep 60"])
    try:
        deadline = time.monotonic() + 10
        while same_netns(p.pid):
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.05)
        yield p.pid
    finally:
        p.kill()
        p.wait()
