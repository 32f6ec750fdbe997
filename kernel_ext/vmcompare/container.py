"""The container side: the same workload in a busybox container, with its memory and start-up time.

Every container carries the session label and is force-removed by :meth:`ContainerSide.remove_all`.
"""

from __future__ import annotations

import io
import queue
import re
import secrets
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from labcore.proc import cmdline, memory_kib, pids

from ..connection import SESSION_LABEL, engine_errors
from ..errors import ImageNotFound, LabError
from .assets import BENCH, READY

__all__ = ["ContainerSide", "RunningContainer", "resolve_client"]

IMAGE = "busybox"
BENCH_PATH = "/vmcmp-bench"


def resolve_client(obj: Any) -> tuple[docker.DockerClient, str]:
    """A DockerClient and a session id from a client or from anything with ``.client`` (a Lab)."""
    if isinstance(obj, docker.DockerClient):
        return obj, "vmcmp-" + secrets.token_hex(3)
    client = getattr(obj, "client", None)
    if isinstance(client, docker.DockerClient):
        return client, str(getattr(obj, "session", "") or "vmcmp-" + secrets.token_hex(3))
    raise TypeError("compare() needs a docker.DockerClient or an object with a .client attribute")


def _host(client: docker.DockerClient) -> str:
    return str(getattr(client.api, "base_url", "?"))


def _shim_memory_kib(container_id: str) -> tuple[int, int]:
    """(RSS, PSS) of the containerd-shim that runs this container; (0, 0) if it is not on this host."""
    needle = container_id.encode()
    for pid in pids():
        try:
            cmd = b" ".join(cmdline(pid))
        except OSError:
            continue
        if b"containerd-shim" in cmd and needle in cmd:
            return memory_kib(pid)
    return 0, 0


@dataclass
class RunningContainer:
    container: Container
    nonce: str
    ready_s: float | None = None
    marker: str = ""

    def field(self, key: str) -> str:
        m = re.search(rf"\b{key}=(\S+)", self.marker)
        return m.group(1) if m else ""


@dataclass
class ContainerSide:
    """Starts, measures and removes containers on one engine."""

    client: docker.DockerClient
    session: str
    image: str = IMAGE
    started: list[Container] = field(default_factory=list)

    def ensure_image(self) -> int:
        """Pull the image if absent; its size in bytes (all its layers: it is self-contained)."""
        with engine_errors(_host(self.client), ref=self.image):
            try:
                img = self.client.images.get(self.image)
            except docker.errors.ImageNotFound:
                img = self.client.images.pull(self.image, tag="latest")
        return int(img.attrs.get("Size") or 0)

    def host_kernel(self) -> str:
        with engine_errors(_host(self.client)):
            return str(self.client.info().get("KernelVersion", ""))

    def _wait_marker(self, c: Container, nonce: str, timeout: float) -> tuple[float, str] | None:
        """Follow the log in a thread (a stream has no timeout of its own) until the marker."""
        got: queue.Queue[tuple[float, str] | None] = queue.Queue()

        def follow() -> None:
            buf = b""
            try:
                for chunk in c.logs(stream=True, follow=True):
                    buf += chunk
                    text = buf.decode(errors="replace")
                    if f"id={nonce}" in text and READY in text:
                        line = text[text.index(READY):].splitlines()[0]
                        got.put((time.monotonic(), line))
                        return
            except (docker.errors.DockerException, OSError, ValueError):
                pass
            got.put(None)

        threading.Thread(target=follow, daemon=True).start()
        try:
            return got.get(timeout=timeout)
        except queue.Empty:
            return None

    def _create(self, cmd: list[str], nonce: str) -> tuple[Container, float]:
        # no network: the VM has no network device either, so both start the same workload
        with engine_errors(_host(self.client), ref=self.image):
            t0 = time.monotonic()
            c = self.client.containers.create(self.image, cmd, labels={SESSION_LABEL: self.session},
                                              name=f"vmcmp-{nonce}", network_mode="none")
            return c, time.monotonic() - t0

    def start(self, bench: Path | None = None, timeout: float = 20.0) -> RunningContainer:
        """Create and start one container that prints the marker and then waits.

        Start-up time = create + start until the marker; copying the benchmark in (between
        create and start) is not counted: it stands in for an image that already contains it.
        """
        nonce = secrets.token_hex(4)
        cmd = ["sh", "-c", f'echo "{READY} id={nonce} kernel=$(uname -r) host=$(hostname)"; exec sleep 3600']
        try:
            c, created = self._create(cmd, nonce)
        except ImageNotFound:  # removed meanwhile (another cell, a cleanup): pull it again, once
            self.ensure_image()
            c, created = self._create(cmd, nonce)
        with engine_errors(_host(self.client), ref=self.image):
            self.started.append(c)
            if bench is not None:
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    tar.add(str(bench), arcname=BENCH_PATH.lstrip("/"))
                c.put_archive("/", buf.getvalue())
            t1 = time.monotonic()
            c.start()
        got = self._wait_marker(c, nonce, timeout)
        if got is None:
            raise LabError("vm.container_failed", detail=f"no marker within {timeout:g} s")
        return RunningContainer(c, nonce, ready_s=created + (got[0] - t1), marker=got[1])

    def memory_kib(self, rc: RunningContainer) -> dict[str, int]:
        """cgroup usage of the container, and RSS/PSS of its shim, in KiB."""
        with engine_errors(_host(self.client)):
            stats = rc.container.stats(stream=False, one_shot=True)
        usage = int(stats.get("memory_stats", {}).get("usage") or 0) // 1024
        rss, pss = _shim_memory_kib(rc.container.id)
        return {"cgroup": usage, "shim_rss": rss, "shim_pss": pss}

    def bench(self, rc: RunningContainer, rounds: int, reps: int = 5) -> float | None:
        """Run the benchmark in the container; its own nanosecond count (best of ``reps``), or None."""
        with engine_errors(_host(self.client)):
            code, out = rc.container.exec_run([BENCH_PATH, str(rounds), str(reps)])
        m = re.search(rf"{BENCH} ns=(\d+)", out.decode(errors="replace")) if code == 0 else None
        return float(m.group(1)) if m else None

    def remove(self, c: Container) -> None:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, OSError):
            return  # stays in self.started; remove_all tries again by label
        if c in self.started:
            self.started.remove(c)

    def remove_all(self) -> list[str]:
        """Force-remove everything this side created; also any straggler with our label and name."""
        for c in list(self.started):
            self.remove(c)
        left = []
        try:
            for c in self.client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={self.session}"}):
                if c.name.startswith("vmcmp-"):
                    self.remove(c)
                    left.append(c.name)
        except (docker.errors.DockerException, OSError):
            pass
        return left
