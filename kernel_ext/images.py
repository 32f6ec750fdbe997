"""``docker image ls`` and ``docker system df`` as snapshots: rows a view can render or a check can read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine_api import content_size
from .formatting import short_id
from .display import Displayable

__all__ = ["DiskUsage", "ImageRow", "ImageTable", "disk_usage_from", "image_rows"]


@dataclass(frozen=True)
class ImageRow:
    repository: str
    tag: str
    id: str  # full "sha256:..."
    digest: str  # "sha256:..." or "<none>"
    created: float  # unix time
    size: int  # the engine's Size: under the containerd store, disk usage (content + unpacked)
    shared_size: int  # -1: not asked for (Lab.images(shared=True) asks)
    unique_size: int
    containers: int
    labels: dict[str, str]
    content_size: int = -1  # compressed blobs (containerd store only; -1: the engine does not say)

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def dangling(self) -> bool:
        return self.repository == "<none>" and self.tag == "<none>"


def image_rows(images: list[dict[str, Any]], df_images: list[dict[str, Any]] | None = None) -> list[ImageRow]:
    """One row per tag, as the CLI lists them; newest first."""
    shared = {i["Id"]: i for i in (df_images or [])}
    known = df_images is not None
    rows: list[ImageRow] = []
    for img in images:
        extra = shared.get(img["Id"], {})
        size = int(img.get("Size", 0))
        sh = max(0, int(extra.get("SharedSize", 0) or 0)) if known else -1
        digests = img.get("RepoDigests") or []
        tags = [t for t in (img.get("RepoTags") or []) if t != "<none>:<none>"]
        common: dict[str, Any] = {
            "id": img["Id"], "created": float(img.get("Created", 0)), "size": size, "shared_size": sh,
            "unique_size": size - sh if known else -1,
            "containers": int(extra.get("Containers", img.get("Containers", -1))),
            "labels": dict(img.get("Labels") or {}), "content_size": content_size(img)}
        if not tags:
            repo = digests[0].rsplit("@", 1)[0] if digests else "<none>"
            dig = digests[0].rsplit("@", 1)[1] if digests else "<none>"
            rows.append(ImageRow(repository=repo, tag="<none>", digest=dig, **common))  # type: ignore[arg-type]
        for t in tags:
            repo, _, tag = t.rpartition(":")
            dig = next((d.rsplit("@", 1)[1] for d in digests if d.rsplit("@", 1)[0] == repo), "<none>")
            rows.append(ImageRow(repository=repo, tag=tag, digest=dig, **common))  # type: ignore[arg-type]
    rows.sort(key=lambda r: (-r.created, r.repository, r.tag))
    return rows


@dataclass(frozen=True)
class ImageTable(Displayable):
    """``docker image ls``: one row per tag (rendered by :mod:`kernel_ext.views.images`)."""

    __view__ = "images"
    rows: tuple[ImageRow, ...]
    digests: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def refs(self) -> list[str]:
        return [r.ref for r in self.rows]

    def ids(self) -> list[str]:
        """Short ids, unique, in order: what ``docker image ls -q`` prints."""
        return list(dict.fromkeys(short_id(r.id) for r in self.rows))

    @property
    def content_known(self) -> bool:
        """Whether the engine reports content sizes (the containerd image store does)."""
        return bool(self.rows) and all(r.content_size >= 0 for r in self.rows)

    def html(self) -> str:
        """The table as JupyterLab shows it (Docker 29's columns under the containerd store)."""
        return str(self._renderers()["text/html"]())


@dataclass(frozen=True)
class DiskUsage(Displayable):
    """``docker system df``: per type, total count, active, size, reclaimable (:mod:`~kernel_ext.views.disk`)."""

    __view__ = "disk"

    rows: tuple[tuple[str, int, int, int, int], ...]


def disk_usage_from(df: dict[str, Any]) -> DiskUsage:
    images = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    cache = df.get("BuildCache") or []
    layers = int(df.get("LayersSize", 0))
    active_imgs = [i for i in images if int(i.get("Containers", 0)) > 0]
    used = sum(int(i.get("Size", 0)) - int(i.get("SharedSize", 0)) for i in active_imgs) + \
        (max((int(i.get("SharedSize", 0)) for i in active_imgs), default=0))
    c_size = sum(int(c.get("SizeRw", 0) or 0) for c in containers)
    c_reclaim = sum(int(c.get("SizeRw", 0) or 0) for c in containers if c.get("State") != "running")
    v_size = sum(int((v.get("UsageData") or {}).get("Size", 0)) for v in volumes)
    v_active = [v for v in volumes if int((v.get("UsageData") or {}).get("RefCount", 0)) > 0]
    v_reclaim = v_size - sum(int((v.get("UsageData") or {}).get("Size", 0)) for v in v_active)
    b_size = sum(int(b.get("Size", 0)) for b in cache)
    return DiskUsage((
        ("Images", len(images), len(active_imgs), layers, max(0, layers - used)),
        ("Containers", len(containers), sum(c.get("State") == "running" for c in containers), c_size, c_reclaim),
        ("Local Volumes", len(volumes), len(v_active), v_size, v_reclaim),
        ("Build Cache", len(cache), sum(bool(b.get("InUse")) for b in cache), b_size,
         sum(int(b.get("Size", 0)) for b in cache if not b.get("InUse"))),
    ))
