"""The lab's upstream registry (which plays Docker Hub), through its HTTP API: tags, digests, and
moving a tag (as a publisher does when they release a new version under the same tag).

The upstream is read-only over TCP; the course's own tag moves go to the *publisher*, the same
storage served on a unix socket only the lab's account can open (``unix:///...``)."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request

from .connection import lab_config
from .errors import ImageNotFound, LabError, RegistryUnavailable

__all__ = ["MANIFEST_TYPES", "image_layers", "manifest_digest", "move_tag", "request", "tags"]

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",  # multi-platform images (Docker 29 pushes these)
])


def _registry(registry: str | None) -> str:
    return registry or lab_config().upstream


def _path(repo: str) -> str:
    return repo if "/" in repo else f"library/{repo}"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class _UnixHandler(urllib.request.HTTPHandler):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(lambda host, **kw: _UnixConnection(self.path), req)  # type: ignore[arg-type]


def request(registry: str, path: str, method: str = "GET", data: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    """One HTTP request to a registry at ``host:port`` or ``unix:///path/to/socket``."""
    if registry.startswith("unix://"):
        opener = urllib.request.build_opener(_UnixHandler(registry.removeprefix("unix://")))
        return _request(f"http://localhost{path}", method, data, headers, opener.open)
    return _request(f"http://{registry}{path}", method, data, headers)


def _request(url: str, method: str = "GET", data: bytes | None = None,
             headers: dict[str, str] | None = None, opener=urllib.request.urlopen) -> tuple[bytes, dict[str, str]]:  # type: ignore[no-untyped-def]
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener(req, timeout=10) as r:
            return r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            path = url.split("/v2/", 1)[-1]
            repo, _, rest = path.partition("/tags/list") if "/tags/list" in path else path.partition("/manifests/")
            raise ImageNotFound("image.notfound.remote", ref=f"{repo}:{rest}" if rest else repo) from e
        raise LabError("engine.error", detail=f"registry: HTTP {e.code} {e.reason}") from e
    except OSError as e:
        raise RegistryUnavailable("registry.down", detail=str(e)[:160]) from e


def tags(repo: str, registry: str | None = None) -> list[str]:
    body, _ = request(_registry(registry), f"/v2/{_path(repo)}/tags/list")
    return sorted(json.loads(body).get("tags") or [])


def manifest_digest(repo: str, tag: str, registry: str | None = None) -> str:
    _, headers = request(_registry(registry), f"/v2/{_path(repo)}/manifests/{tag}", "HEAD",
                         headers={"Accept": MANIFEST_TYPES})
    return headers.get("Docker-Content-Digest", "")


def move_tag(repo: str, tag: str, to: str, registry: str | None = None) -> str:
    """Point ``repo:tag`` at the manifest ``repo:to`` points at. Returns the new digest.

    By default through the lab's publisher (the upstream itself is read-only over TCP)."""
    reg = registry or lab_config().publisher or _registry(None)
    body, headers = request(reg, f"/v2/{_path(repo)}/manifests/{to}", headers={"Accept": MANIFEST_TYPES})
    ctype = headers.get("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
    request(reg, f"/v2/{_path(repo)}/manifests/{tag}", "PUT", data=body, headers={"Content-Type": ctype})
    return manifest_digest(repo, tag, reg)


def image_layers(repo: str, reference: str, registry: str | None = None,
                 platform: tuple[str, str] = ("linux", "amd64")) -> list[tuple[str, int]]:
    """``(digest, compressed size)`` of each layer of ``repo:reference`` (a tag or a digest),
    bottom first; an index (multi-platform image) is resolved to ``platform``'s manifest.
    ``repo`` is the path in the registry, as is (``library/nginx``, not ``nginx``)."""
    reg = _registry(registry)
    body, _ = request(reg, f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES})
    manifest = json.loads(body)
    if "manifests" in manifest:
        want = [m for m in manifest["manifests"]
                if (m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture")) == platform]
        if not want:
            return []
        return image_layers(repo, want[0]["digest"], reg, platform)
    return [(str(x["digest"]), int(x.get("size", 0))) for x in manifest.get("layers") or []]
