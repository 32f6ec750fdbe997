"""Engine API calls docker-py 7 does not wrap, asked only of engines whose API version has them.

The containerd image store (Docker 29's default) reports an image's sizes per platform manifest:
``/images/json?manifests=1`` (API 1.47) and ``/images/{name}/json?manifests=1`` (API 1.48) add a
``Manifests`` list with ``Size.Content`` (compressed blobs, what a pull downloads) and
``Size.Total`` (content plus unpacked snapshots: what ``Size`` means under that store).
The API version is the one docker-py negotiated with the engine; nothing here names a version in a
URL, so an engine that refuses old API versions (v29: < 1.44) is never asked for one.
"""

from __future__ import annotations

from typing import Any

from docker.utils import convert_filters, version_gte

__all__ = ["api_at_least", "content_size", "image_list", "image_manifests", "inspect_with_manifests"]


def api_at_least(api: Any, version: str) -> bool:
    """Whether the negotiated API version is ``version`` or newer."""
    return bool(version_gte(str(api.api_version), version))


def image_list(api: Any, all: bool = False, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``GET /images/json``; with ``Manifests`` per image when the engine has them (API >= 1.47)."""
    if not api_at_least(api, "1.47"):
        return list(api.images(all=all, filters=filters or None))
    params: dict[str, Any] = {"all": 1 if all else 0, "manifests": 1}
    if filters:
        params["filters"] = convert_filters(filters)
    return list(api._result(api._get(api._url("/images/json"), params=params), True))


def inspect_with_manifests(api: Any, ref: str) -> dict[str, Any]:
    """``GET /images/{ref}/json``; with ``Manifests`` when the engine has them (API >= 1.48)."""
    if not api_at_least(api, "1.48"):
        return dict(api.inspect_image(ref))
    return dict(api._result(api._get(api._url("/images/{0}/json", ref), params={"manifests": 1}), True))


def image_manifests(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The image's platform manifests that are present locally (empty under a graph driver)."""
    return [m for m in info.get("Manifests") or [] if m.get("Kind") == "image" and m.get("Available")]


def content_size(info: dict[str, Any]) -> int:
    """Compressed size of the image's local platform manifests (``docker image ls --tree``'s
    CONTENT SIZE), or -1 when the engine does not say (graph drivers)."""
    found = image_manifests(info)
    return sum(int((m.get("Size") or {}).get("Content", 0)) for m in found) if found else -1

