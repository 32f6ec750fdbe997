"""The lab's two registries (Debian's docker-registry, CNCF distribution) on loopback.

*upstream* plays Docker Hub (delete enabled, so a tag can be moved); *mirror* is a pull-through
cache in front of it, which the engine's ``registry-mirrors`` points at.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .state import LabPaths

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

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

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
            f"http: {{addr: '{self.addr}'}}",
        ]
        if self.remote:
            lines.append(f"proxy: {{remoteurl: '{self.remote}'}}")
        return "\n".join(lines) + "\n"

    def pid(self) -> int | None:
        return proc.running_pid(self.pidfile, self.config.name)

    def ready(self) -> bool:
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
        if not proc.port_free(self.port):
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


def lab_registries(p: LabPaths, upstream_port: int, mirror_port: int) -> tuple[Registry, Registry]:
    up = Registry("upstream", upstream_port, p.home / "registry" / "upstream", p.run, p.logs)
    mirror = Registry("mirror", mirror_port, p.home / "registry" / "mirror", p.run, p.logs,
                      remote=f"http://{up.addr}")
    return up, mirror
