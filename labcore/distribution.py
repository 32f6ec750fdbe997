"""One client of the registry HTTP API (distribution's API v2) for the whole project: labctl
(course images), kernel_ext (the learner's ``registry`` module) and the grading checks.

A registry is ``host:port`` (plain HTTP: the lab's registries listen on loopback only) or
``unix:///path/to/socket`` (the publisher). Manifests are asked for with one ``Accept`` list that
names Docker's and OCI's manifest and index types, so an image pushed by either image store (the
containerd store pushes OCI indexes) is found; an index is resolved to one platform's manifest.

Failures are :class:`RegistryError`: :class:`NotFound` (HTTP 404: no such repository, tag or blob),
:class:`Unreachable` (nothing answers). Callers that face a learner translate them.

>>> repository_path("nginx"), repository_path("dockerlab/greeting")
('library/nginx', 'dockerlab/greeting')
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

__all__ = [
    "DOCKER_INDEX",
    "DOCKER_MANIFEST",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "NotFound",
    "RegistryError",
    "Unreachable",
    "blob",
    "image_config",
    "image_layers",
    "manifest",
    "manifest_digest",
    "put_manifest",
    "repository_path",
    "request",
    "tags",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_INDEX = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"  # multi-platform images (Docker 29 pushes these)
MANIFEST_TYPES = ", ".join([DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_INDEX, OCI_INDEX])
TIMEOUT = 10.0


class RegistryError(Exception):
    """A registry request failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class NotFound(RegistryError):
    """HTTP 404: the repository, tag, manifest or blob is not there."""


class Unreachable(RegistryError):
    """Nothing answered at that address (or the socket is not there)."""


def repository_path(name: str) -> str:
    """The path of a Docker Hub name in a registry: ``nginx`` -> ``library/nginx``."""
    return name if "/" in name else f"library/{name}"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _UnixHandler(urllib.request.HTTPHandler):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self.socket_path, self.timeout = path, timeout

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(lambda host, **kw: _UnixConnection(self.socket_path, self.timeout), req)


def request(registry: str, path: str, method: str = "GET", data: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = TIMEOUT) -> tuple[bytes, dict[str, str]]:
    """One HTTP request to ``registry`` (``host:port`` or ``unix:///socket``): (body, headers)."""
    open_: Callable[..., Any] = urllib.request.urlopen
    url = f"http://{registry}{path}"
    if registry.startswith("unix://"):
        open_ = urllib.request.build_opener(_UnixHandler(registry.removeprefix("unix://"), timeout)).open
        url = f"http://localhost{path}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with open_(req, timeout=timeout) as r:
            return r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        kind = NotFound if e.code == 404 else RegistryError
        raise kind(f"registry {registry}: HTTP {e.code} {e.reason} for {path}", e.code, path) from e
    except OSError as e:
        raise Unreachable(f"registry {registry}: {e}", 0, path) from e


def tags(registry: str, repo: str) -> list[str]:
    """The tags of ``repo`` (its path in the registry, e.g. ``library/nginx``), sorted."""
    body, _ = request(registry, f"/v2/{repo}/tags/list")
    return sorted(json.loads(body).get("tags") or [])


def manifest(registry: str, repo: str, reference: str) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    """The manifest or index that ``repo:reference`` (a tag or a digest) names: parsed, raw, headers."""
    body, headers = request(registry, f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES})
    return json.loads(body), body, headers


def manifest_digest(registry: str, repo: str, reference: str) -> str:
    """The digest ``repo:reference`` points at (``Docker-Content-Digest``; a ``HEAD`` request)."""
    _, headers = request(registry, f"/v2/{repo}/manifests/{reference}", "HEAD", headers={"Accept": MANIFEST_TYPES})
    return headers.get("Docker-Content-Digest", "")


def put_manifest(registry: str, repo: str, reference: str, body: bytes, media_type: str) -> None:
    """Upload a manifest under ``reference`` (a tag): what a push does last, or a tag move."""
    request(registry, f"/v2/{repo}/manifests/{reference}", "PUT", data=body, headers={"Content-Type": media_type})


def blob(registry: str, repo: str, digest: str) -> bytes:
    body, _ = request(registry, f"/v2/{repo}/blobs/{digest}")
    return body


def _platform_manifest(registry: str, repo: str, reference: str,
                       platform: tuple[str, str]) -> dict[str, Any] | None:
    """The image manifest of ``platform`` (an index is resolved); None if it has no such platform."""
    found, _, _ = manifest(registry, repo, reference)
    if "manifests" in found:
        want = [m for m in found["manifests"]
                if (m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture")) == platform]
        return _platform_manifest(registry, repo, want[0]["digest"], platform) if want else None
    return found


def image_layers(registry: str, repo: str, reference: str,
                 platform: tuple[str, str] = ("linux", "amd64")) -> list[tuple[str, int]]:
    """``(digest, compressed size)`` of each layer of ``repo:reference``, bottom first
    (``[]`` when an index has no manifest for ``platform``)."""
    found = _platform_manifest(registry, repo, reference, platform)
    return [(str(x["digest"]), int(x.get("size", 0))) for x in (found or {}).get("layers") or []]


def image_config(registry: str, repo: str, reference: str,
                 platform: tuple[str, str] = ("linux", "amd64")) -> dict[str, Any]:
    """The image configuration (labels, history, rootfs) of ``repo:reference``; ``{}`` when an
    index has no manifest for ``platform``."""
    found = _platform_manifest(registry, repo, reference, platform)
    if not found or "config" not in found:
        return {}
    return dict(json.loads(blob(registry, repo, found["config"]["digest"])))
