"""The lab's upstream registry (which plays Docker Hub), through its HTTP API: tags, digests, and
moving a tag (as a publisher does when they release a new version under the same tag)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .connection import lab_config
from .errors import ImageNotFound, LabError, RegistryUnavailable

__all__ = ["MANIFEST_TYPES", "manifest_digest", "move_tag", "tags"]

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def _registry(registry: str | None) -> str:
    return registry or lab_config().upstream


def _path(repo: str) -> str:
    return repo if "/" in repo else f"library/{repo}"


def _request(url: str, method: str = "GET", data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
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
    body, _ = _request(f"http://{_registry(registry)}/v2/{_path(repo)}/tags/list")
    return sorted(json.loads(body).get("tags") or [])


def manifest_digest(repo: str, tag: str, registry: str | None = None) -> str:
    _, headers = _request(f"http://{_registry(registry)}/v2/{_path(repo)}/manifests/{tag}", "HEAD",
                          headers={"Accept": MANIFEST_TYPES})
    return headers.get("Docker-Content-Digest", "")


def move_tag(repo: str, tag: str, to: str, registry: str | None = None) -> str:
    """Point ``repo:tag`` at the manifest ``repo:to`` points at. Returns the new digest."""
    reg = _registry(registry)
    body, headers = _request(f"http://{reg}/v2/{_path(repo)}/manifests/{to}",
                             headers={"Accept": MANIFEST_TYPES})
    ctype = headers.get("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
    _request(f"http://{reg}/v2/{_path(repo)}/manifests/{tag}", "PUT", data=body,
             headers={"Content-Type": ctype})
    return manifest_digest(repo, tag, reg)
