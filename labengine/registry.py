"""The lab's registries (Debian's docker-registry, CNCF distribution) on loopback.

*upstream* plays Docker Hub. It is **read-only** over TCP (distribution's maintenance mode), so no
engine can push over a course image. The course's own writes go through *publisher*, the same
storage served on a unix socket in the lab's private run directory: the tag moves of chapter 6, and
the course images ``./lab up`` publishes (the engine reaches the socket at the upstream's address
meanwhile). *mirror* is a pull-through cache in front of the upstream, which the engine's
``registry-mirrors`` points at. *learner* is the learner's own registry: what learners push
(chapter 3, lab 4) goes there.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from labcore import proc
from labcore.state import LabPaths

__all__ = ["Registry", "lab_registries"]

BINARY = "/usr/bin/docker-registry"


@dataclass
class Registry:
    name: str  # "upstream" or "mirror"
    port: int
    storage: Path
    run: Path
    logs: Path
    remote: str | None = None  # for a pull-through cache: the upstream's URL
    readonly: bool = False
    unix: bool = False  # listen on <run>/registry-<name>.sock instead of a TCP port

    @property
    def addr(self) -> str:
        return f"unix://{self.sock}" if self.unix else f"127.0.0.1:{self.port}"

    @property
    def sock(self) -> Path:
        return self.run / f"registry-{self.name}.sock"

    @property
    def pidfile(self) -> Path:
        return self.run / f"registry-{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.logs / f"registry-{self.name}.log"

    @property
    def config(self) -> Path:
        return self.storage.parent / f"registry-{self.name}.yml"

    def config_text(self) -> str:
        lines = [
            "version: 0.1",
            "log: {level: info, formatter: text, fields: {service: " + self.name + "}}",
            "storage:",
            f"  filesystem: {{rootdirectory: {self.storage}}}",
            "  delete: {enabled: true}" if self.remote is None else "  cache: {blobdescriptor: inmemory}",
        ]
        if self.readonly:
            lines.append("  maintenance: {readonly: {enabled: true}, uploadpurging: {enabled: false}}")
        lines.append(f"http: {{net: unix, addr: '{self.sock}'}}" if self.unix else f"http: {{addr: '{self.addr}'}}")
        if self.remote:
            lines.append(f"proxy: {{remoteurl: '{self.remote}'}}")
        return "\n".join(lines) + "\n"

    def pid(self) -> int | None:
        return proc.running_pid(self.pidfile, self.config.name)

    def ready(self) -> bool:
        if self.unix:
            from labcore.distribution import RegistryError, request

            try:
                request(self.addr, "/v2/")
                return True
            except RegistryError:
                return False
        try:
            with urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self) -> bool:
        """Start unless already running with this configuration. True if it was started now."""
        self.storage.mkdir(parents=True, exist_ok=True)
        text = self.config_text()
        if self.pid() and self.config.exists() and self.config.read_text() == text and self.ready():
            return False
        self.stop()
        if not Path(BINARY).exists():
            raise proc.LabFailure("docker-registry is not installed: run ./lab up as root to install it.")
        if self.unix:
            self.sock.unlink(missing_ok=True)
        elif not _port_freed(self.port):
            raise proc.LabFailure(
                f"Port {self.port} for the {self.name} registry is taken: free it or set "
                f"LAB_{self.name.upper()}_PORT to another port, then run ./lab up again.")
        self.config.write_text(text)
        proc.start([BINARY, "serve", str(self.config)], self.pidfile, self.log)
        try:
            pid = proc.running_pid(self.pidfile, self.config.name)
            proc.wait_for(self.ready, 15, f"The {self.name} registry", self.log, pid=pid)
        except proc.LabFailure:
            self.stop()
            raise
        return True

    def stop(self) -> bool:
        return proc.stop(self.pidfile, self.config.name)


def _port_freed(port: int, wait: float = 5.0) -> bool:
    """Free now, or soon: a registry we just stopped may hold its socket for a moment."""
    import time

    deadline = time.monotonic() + wait
    while not proc.port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@dataclass
class LabRegistries:
    upstream: Registry
    mirror: Registry
    learner: Registry
    publisher: Registry

    def all(self) -> list[Registry]:
        return [self.upstream, self.publisher, self.mirror, self.learner]


def lab_registries(p: LabPaths, upstream_port: int, mirror_port: int, learner_port: int = 0) -> LabRegistries:
    store = p.home / "registry"
    up = Registry("upstream", upstream_port, store / "upstream", p.run, p.logs, readonly=True)
    mirror = Registry("mirror", mirror_port, store / "mirror", p.run, p.logs, remote=f"http://{up.addr}")
    learner = Registry("learner", learner_port, store / "learner", p.run, p.logs)
    # Same storage as the upstream; its config file needs its own name (the pid check uses it).
    publisher = Registry("publisher", 0, store / "upstream", p.run, p.logs, unix=True)
    return LabRegistries(up, mirror, learner, publisher)
