"""All images and their shared layers as one snapshot, the data the layer graph is drawn from.

A layer is shown by its DiffID (the digest of its uncompressed tar: what ``docker image inspect``
lists under ``RootFS.Layers``, on either image store), and placed by its chain id (the layer together
with every layer under it), so a stack of layers two images share is drawn once. Which image is built
on which comes from the same place: an image whose layers start with all of another image's layers is
built on it (``Parent`` and ``ContainerConfig`` are gone from the engine API since Docker 26, and
pulled images never had them). Snapshot first (:func:`graph_snapshot`), then draw
(:func:`kernel_ext.views.graph.build_layer_graph`, pure); :func:`layer_graph` does both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .removal import chain_ids

__all__ = [
    "GraphContainer",
    "GraphImage",
    "GraphSnapshot",
    "graph_image",
    "graph_snapshot",
    "image_parents",
]


@dataclass(frozen=True)
class GraphImage:
    id: str
    tags: tuple[str, ...]
    chain: tuple[str, ...]
    sizes: tuple[int, ...]  # per layer, or () when unknown
    created_by: tuple[str, ...]
    size: int  # as ``docker image ls`` shows it (containerd store: disk usage)
    diff_ids: tuple[str, ...] = ()  # RootFS.Layers, bottom first
    created: float = 0.0


@dataclass(frozen=True)
class GraphContainer:
    name: str
    image: str
    size_rw: int


@dataclass(frozen=True)
class GraphSnapshot:
    images: tuple[GraphImage, ...]
    containers: tuple[GraphContainer, ...] = ()


def _layer_steps(history: list[dict[str, Any]], n: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
    rows = list(reversed(history))
    steps = [h for h in rows if int(h.get("Size", 0)) > 0 or "#(nop)" not in h.get("CreatedBy", "")
             or any(k in h.get("CreatedBy", "") for k in ("#(nop) COPY", "#(nop) ADD"))]
    if len(steps) != n:
        return (), ()
    return tuple(int(h.get("Size", 0)) for h in steps), tuple(" ".join(h.get("CreatedBy", "").split())
                                                              for h in steps)


def graph_image(info: dict[str, Any], history: list[dict[str, Any]],
                listed: dict[str, Any] | None = None) -> GraphImage:
    """One image from its inspect data, its history and (for the size) its ``docker image ls`` row."""
    layers = list(info.get("RootFS", {}).get("Layers", []))
    sizes, by = _layer_steps(history, len(layers))
    return GraphImage(info["Id"], tuple(t for t in info.get("RepoTags") or [] if t != "<none>:<none>"),
                      tuple(chain_ids(layers)), sizes, by, int((listed or info).get("Size", 0)),
                      tuple(layers), _epoch(info.get("Created")))


def graph_snapshot(api: Any, refs: list[str] | None = None) -> GraphSnapshot:
    listed = {i["Id"]: i for i in api.images()}  # sizes as `docker image ls` shows them
    infos = [api.inspect_image(r) for r in (refs or listed)]
    out = [graph_image(info, api.history(info["Id"]), listed.get(info["Id"])) for info in infos]
    ids = {i.id for i in out}
    cons = tuple(GraphContainer(c["Names"][0].lstrip("/"), c["ImageID"], int(c.get("SizeRw", 0) or 0))
                 for c in api.containers(size=True) if c["ImageID"] in ids)
    return GraphSnapshot(tuple(sorted(out, key=lambda i: i.tags or ("~",))), cons)


def _epoch(created: Any) -> float:
    """``Created``: unix seconds in image lists, RFC 3339 text in inspect data."""
    if isinstance(created, (int, float)):
        return float(created)
    import datetime as _dt

    text = str(created or "").rstrip("Z").split(".")[0]
    try:
        return _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.timezone.utc).timestamp()
    except ValueError:
        return 0.0


def image_parents(images: tuple[GraphImage, ...] | list[GraphImage]) -> dict[str, str]:
    """Image id -> the id of the image it is built on: the one whose layers are the longest strict
    prefix of its own (the newest such, when several images share those layers)."""
    by_layers: dict[tuple[str, ...], list[GraphImage]] = defaultdict(list)
    for img in images:
        by_layers[img.chain].append(img)
    out: dict[str, str] = {}
    for img in images:
        for n in range(len(img.chain) - 1, 0, -1):
            below = [b for b in by_layers.get(img.chain[:n], []) if b.created <= img.created or not img.created]
            if below:
                out[img.id] = max(below, key=lambda b: (b.created, b.id)).id
                break
    return out
