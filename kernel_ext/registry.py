"""The lab's upstream registry (which plays Docker Hub), for learners: tags, digests, layers, and
moving a tag (as a publisher does when they release a new version under the same tag).

The HTTP client is the project's one registry client, :mod:`labcore.distribution`; this module
adds the lab's addresses (from the lab's state) and learner-facing errors. The upstream is
read-only over TCP; the course's own tag moves go to the *publisher*, the same storage served on a
unix socket only the lab's account can open (``unix:///...``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from labcore import distribution
from labcore.distribution import MANIFEST_TYPES

from .connection import lab_config
from .errors import ImageNotFound, LabError, RegistryUnavailable

__all__ = ["MANIFEST_TYPES", "image_layers", "manifest_digest", "move_tag", "request", "tags"]


def _registry(registry: str | None) -> str:
    return registry or lab_config().upstream


@contextlib.contextmanager
def _learner_errors() -> Iterator[None]:
    """A registry failure as a sentence a learner can act on."""
    try:
        yield
    except distribution.NotFound as e:
        path = e.path.split("/v2/", 1)[-1]
        repo, _, rest = path.partition("/tags/list") if "/tags/list" in path else path.partition("/manifests/")
        raise ImageNotFound("image.notfound.remote", ref=f"{repo}:{rest}" if rest else repo) from e
    except distribution.Unreachable as e:
        raise RegistryUnavailable("registry.down", detail=str(e.__cause__ or e)[:160]) from e
    except distribution.RegistryError as e:
        cause = e.__cause__
        why = f"HTTP {e.status} {getattr(cause, 'reason', '')}" if cause is not None else str(e)
        raise LabError("engine.error", detail=f"registry: {why}") from e


def request(registry: str, path: str, method: str = "GET", data: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    """One HTTP request to a registry at ``host:port`` or ``unix:///path/to/socket``."""
    with _learner_errors():
        return distribution.request(registry, path, method, data, headers)


def tags(repo: str, registry: str | None = None) -> list[str]:
    """The tags of ``repo`` (``nginx``, ``dockerlab/greeting``) in the upstream, or in ``registry``."""
    with _learner_errors():
        return distribution.tags(_registry(registry), distribution.repository_path(repo))


def manifest_digest(repo: str, tag: str, registry: str | None = None) -> str:
    with _learner_errors():
        return distribution.manifest_digest(_registry(registry), distribution.repository_path(repo), tag)


def move_tag(repo: str, tag: str, to: str, registry: str | None = None) -> str:
    """Point ``repo:tag`` at the manifest ``repo:to`` points at. Returns the new digest.

    By default through the lab's publisher (the upstream itself is read-only over TCP)."""
    reg = registry or lab_config().publisher or _registry(None)
    path = distribution.repository_path(repo)
    with _learner_errors():
        _, body, headers = distribution.manifest(reg, path, to)
        distribution.put_manifest(reg, path, tag, body, headers.get("Content-Type", distribution.DOCKER_MANIFEST))
        return distribution.manifest_digest(reg, path, tag)


def image_layers(repo: str, reference: str, registry: str | None = None,
                 platform: tuple[str, str] = ("linux", "amd64")) -> list[tuple[str, int]]:
    """``(digest, compressed size)`` of each layer of ``repo:reference`` (a tag or a digest),
    bottom first; an index (multi-platform image) is resolved to ``platform``'s manifest.
    ``repo`` is the path in the registry, as is (``library/nginx``, not ``nginx``)."""
    with _learner_errors():
        return distribution.image_layers(_registry(registry), repo, reference, platform)
