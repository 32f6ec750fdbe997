"""What a lab check reads: the engine this kernel works with and the lab's registries."""

from __future__ import annotations

import os
from typing import Any

from labcore.state import load_state

__all__ = ["client", "mirror_address", "published_url", "registry_address"]

_CLIENT: list[Any] = []


def client() -> Any:
    """docker-py client for the engine this kernel works with (DOCKER_HOST, else the lab's)."""
    import docker

    if not _CLIENT:
        host = os.environ.get("DOCKER_HOST") or load_state().docker_host
        _CLIENT.append(docker.DockerClient(base_url=host, timeout=60))
    return _CLIENT[0]


def registry_address() -> str:
    """host:port of the registry learners push to: their own (the course's upstream is read-only);
    a private one while grading."""
    st = load_state()
    return st.registry or st.upstream or "127.0.0.1:5000"


def mirror_address() -> str:
    return load_state().mirror or "127.0.0.1:5001"


def published_url(container: str, port: int = 80, path: str = "/") -> str:
    """``http://ip:port/`` where ``container``'s ``port`` is published on this host."""
    c = client().containers.get(container)
    bindings = (c.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    if not bindings:
        raise LookupError(f"{container}: {port}/tcp is not published")
    ip = bindings[0]["HostIp"] or "127.0.0.1"
    ip = "127.0.0.1" if ip in ("0.0.0.0", "::") else ip
    return f"http://{ip}:{bindings[0]['HostPort']}{path}"
