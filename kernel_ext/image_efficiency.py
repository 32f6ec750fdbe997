"""dive's image efficiency: files that appear in more than one layer waste the bytes of every copy.

The layers are read from ``docker save`` (the image's own tar layers, on either image store), so
the score is computed here from what the engine holds, not estimated from the history.

>>> efficiency_from_layers("x", [[("etc/a", 100)], [("etc/a", 100)]]).score
0.0
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .display import Displayable

__all__ = ["Efficiency", "efficiency", "efficiency_from_layers", "read_saved_layers"]


@dataclass(frozen=True)
class Efficiency(Displayable):
    """dive's efficiency score of one image (:mod:`~kernel_ext.views.efficiency` renders it)."""

    __view__ = "efficiency"

    ref: str
    score: float  # 0..1, dive's "image efficiency score"
    wasted_bytes: int
    total_bytes: int
    inefficient: tuple[tuple[str, int, int], ...] = field(default=())  # (path, copies, bytes)


def efficiency_from_layers(ref: str, layers: list[list[tuple[str, int]]]) -> Efficiency:
    """dive's rule: a path found in more than one layer wastes the bytes of all its copies.

    ``layers``: per layer (bottom first), its (path, size) entries; a deletion is ``.wh.name``.
    """
    seen: dict[str, list[int]] = defaultdict(list)
    total = 0
    for entries in layers:
        for path, size in entries:
            total += size
            d, _, base = path.rpartition("/")
            if base.startswith(".wh.") and base != ".wh..wh..opq":
                path = f"{d}/{base[4:]}" if d else base[4:]
            seen[path].append(size)
    bad = sorted(((p, len(s), sum(s)) for p, s in seen.items() if len(s) > 1), key=lambda x: -x[2])
    wasted = sum(b for _, _, b in bad)
    return Efficiency(ref, 1.0 - (wasted / total if total else 0.0), wasted, total, tuple(bad))


def read_saved_layers(archive: bytes) -> list[list[tuple[str, int]]]:
    """Per layer (bottom first), the (path, size) of each non-directory entry of a ``docker save``
    archive: a graph driver's docker-archive (``manifest.json`` -> ``<id>/layer.tar``) or the
    containerd store's OCI layout (also carrying ``manifest.json``, whose layers are compressed
    blobs; without it, ``index.json`` -> manifest -> layers)."""
    outer = tarfile.open(fileobj=io.BytesIO(archive))  # noqa: SIM115 (in memory; nothing to close)
    names = set(outer.getnames())

    def read_json(name: str) -> Any:
        return json.load(outer.extractfile(name))  # type: ignore[arg-type]

    if "manifest.json" in names:
        paths = list(read_json("manifest.json")[0]["Layers"])
    else:
        desc = read_json("index.json")["manifests"][0]
        while "index" in desc.get("mediaType", "") or "list" in desc.get("mediaType", ""):
            desc = read_json(_blob(desc["digest"]))["manifests"][0]
        paths = [_blob(x["digest"]) for x in read_json(_blob(desc["digest"]))["layers"]]
    layers = []
    for name in paths:
        with tarfile.open(fileobj=outer.extractfile(name)) as inner:  # transparent gzip (OCI blobs)
            layers.append([(m.name.removeprefix("./"), m.size) for m in inner.getmembers()
                           if not m.isdir()])
    return layers


def _blob(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def efficiency(lab: Any, ref: str) -> Efficiency:
    """Read ``ref``'s own layers (``docker save``) and compute dive's efficiency score."""
    with lab._errors(ref=ref):
        raw = b"".join(lab.api.get_image(ref))
    return efficiency_from_layers(ref, read_saved_layers(raw))
