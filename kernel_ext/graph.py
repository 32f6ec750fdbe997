"""All images and their shared layers as one graph, and dive's efficiency score of one image.

A layer is shown by its DiffID (the digest of its uncompressed tar: what ``docker image inspect``
lists under ``RootFS.Layers``, on either image store), and placed by its chain id (the layer together
with every layer under it), so a stack of layers two images share is drawn once. Which image is built
on which comes from the same place: an image whose layers start with all of another image's layers is
built on it (``Parent`` and ``ContainerConfig`` are gone from the engine API since Docker 26, and
pulled images never had them). Snapshot first (:func:`graph_snapshot`), then draw
(:func:`build_layer_graph`, pure).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import graphviz

from .errors import ToolMissing
from .formatting import human_size, short_id
from .messages import register, t
from .removal import chain_ids

__all__ = [
    "Efficiency",
    "GraphContainer",
    "GraphImage",
    "GraphSnapshot",
    "LayerGraph",
    "build_layer_graph",
    "efficiency",
    "efficiency_from_layers",
    "graph_image",
    "graph_snapshot",
    "image_parents",
    "layer_graph",
    "read_saved_layers",
]

register({
    "graph.dot_missing": {"zh": "画图需要 Graphviz 的 dot 程序：运行 ./lab up（或 apt-get install graphviz）后重试。",
                          "en": "Drawing needs Graphviz's dot: run ./lab up (or apt-get install graphviz) and retry."},
    "graph.summary": {"zh": "层关系图：{images} 个镜像，{layers} 个层（共享 {shared} 个），{containers} 个运行中的容器",
                      "en": "Layer graph: {images} images, {layers} layers ({shared} shared), {containers} running containers"},
    "graph.dangling": {"zh": "虚悬镜像", "en": "dangling"},
    "eff.summary": {"zh": "{ref}：镜像效率 {score:.1%}，浪费 {wasted}（{files} 个文件在多个层中出现）",
                    "en": "{ref}: image efficiency {score:.1%}, {wasted} wasted ({files} files appear in more than one layer)"},
})


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


class LayerGraph(graphviz.Digraph):  # type: ignore[misc]
    """A ``graphviz.Digraph`` with a readable text form (for exports and nbval)."""

    summary: str = ""

    def __repr__(self) -> str:
        return self.summary

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        try:
            bundle = dict(super()._repr_mimebundle_(include, exclude, **kwargs))
        except graphviz.ExecutableNotFound as e:
            raise ToolMissing("graph.dot_missing") from e
        bundle["text/plain"] = self.summary
        return bundle

    def svg(self) -> str:
        try:
            return str(self.pipe(format="svg", encoding="utf-8"))
        except graphviz.ExecutableNotFound as e:
            raise ToolMissing("graph.dot_missing") from e


def build_layer_graph(snap: GraphSnapshot) -> LayerGraph:
    g = LayerGraph("layers", graph_attr={"rankdir": "BT", "fontname": "Helvetica", "fontsize": "10",
                                         "nodesep": "0.25", "ranksep": "0.3",
                                         "size": "10.5,14"},  # inches: wide graphs shrink to the output area
                   node_attr={"fontname": "Helvetica", "fontsize": "9", "shape": "box", "style": "rounded,filled",
                              "fillcolor": "#f6f8fa", "color": "#8c959f"})
    users: dict[str, int] = defaultdict(int)
    for img in snap.images:
        for c in img.chain:
            users[c] += 1
    drawn: set[str] = set()
    parents = image_parents(snap.images)  # shown as the image node's tooltip (SVG title)
    names = {img.id: (img.tags[0] if img.tags else short_id(img.id)) for img in snap.images}
    for img in snap.images:
        below = None
        for i, cid in enumerate(img.chain):
            if cid not in drawn:
                size = f"\\n{human_size(img.sizes[i])}" if img.sizes else ""
                step = img.created_by[i].replace("/bin/sh -c #(nop) ", "")[:38] if img.created_by else ""
                shown = img.diff_ids[i] if img.diff_ids else cid
                label = f"{short_id(shown)}{size}" + (f"\\n{_dot_esc(step)}" if step else "")
                shared = users[cid] > 1
                g.node("L" + short_id(cid), label, fillcolor="#ddf4ff" if shared else "#f6f8fa",
                       penwidth="2" if shared else "1")
                drawn.add(cid)
                if below:
                    g.edge("L" + short_id(below), "L" + short_id(cid), arrowhead="none")
            below = cid
        name = "\\n".join(_dot_esc(x) for x in img.tags) or f"<none>\\n{t('graph.dangling')}"
        tip = {"tooltip": _dot_esc(f"FROM {names[parents[img.id]]}")} if img.id in parents else {}
        g.node("I" + short_id(img.id), f"{name}\\n{short_id(img.id)} · {human_size(img.size)}", **tip,
               shape="box", style="filled,bold", fillcolor="#fff8c5" if img.tags else "#ffebe9",
               color="#9a6700" if img.tags else "#cf222e")
        if below:
            g.edge("L" + short_id(below), "I" + short_id(img.id), style="dashed", arrowhead="none")
    for ctr in snap.containers:
        g.node("C" + ctr.name, f"{_dot_esc(ctr.name)}\\n(writable layer · {human_size(ctr.size_rw)})",
               shape="box", style="filled,dashed", fillcolor="#dafbe1", color="#1a7f37")
        g.edge("I" + short_id(ctr.image), "C" + ctr.name, arrowhead="none")
    g.summary = t("graph.summary", images=len(snap.images), layers=len(drawn),
                  shared=sum(1 for c in drawn if users[c] > 1), containers=len(snap.containers))
    return g


def _dot_esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def layer_graph(lab: Any, refs: list[str] | None = None) -> LayerGraph:
    """The layer graph of ``refs`` (default: every image) on ``lab``'s engine."""
    with lab._errors(ref=", ".join(refs or [])):
        return build_layer_graph(graph_snapshot(lab.api, refs))


@dataclass(frozen=True)
class Efficiency:
    ref: str
    score: float  # 0..1, dive's "image efficiency score"
    wasted_bytes: int
    total_bytes: int
    inefficient: tuple[tuple[str, int, int], ...] = field(default=())  # (path, copies, bytes)

    def text(self) -> str:
        head = t("eff.summary", ref=self.ref, score=self.score, wasted=human_size(self.wasted_bytes),
                 files=len(self.inefficient))
        rows = [f"  {n}×  {human_size(b):>8}  {p}" for p, n, b in self.inefficient[:10]]
        return "\n".join([head, *rows])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .formatting import esc

        return {"text/plain": self.text(), "text/html": f"<pre>{esc(self.text())}</pre>"}


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
