"""The layer graph drawn with graphviz: layers by chain id (shared stacks drawn once, filled blue),
images on top of their last layer, running containers' writable layers on their image.

Building the graph is pure (:func:`build_layer_graph` on a :class:`~kernel_ext.graph.GraphSnapshot`);
``dot`` runs only when the graph is rendered (SVG in a notebook).
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Container
from typing import Any

import graphviz

from ..errors import ToolMissing
from ..formatting import human_size, short_id
from ..graph import GraphSnapshot, graph_snapshot, image_parents
from ..messages import t
from ..display import bundle

__all__ = ["LayerGraph", "accessible_svg", "build_layer_graph", "layer_graph"]


class LayerGraph(graphviz.Digraph):  # type: ignore[misc]
    """A ``graphviz.Digraph`` with a readable text form (for exports and nbval)."""

    summary: str = ""

    def __repr__(self) -> str:
        return self.summary

    def _repr_mimebundle_(self, include: Container[str] | None = None, exclude: Container[str] | None = None,
                          **kwargs: Any) -> dict[str, Any]:
        try:
            drawn = dict(super()._repr_mimebundle_(include, exclude, **kwargs))
        except graphviz.ExecutableNotFound as e:
            raise ToolMissing("graph.dot_missing") from e
        drawn.pop("text/plain", None)  # graphviz's own is the DOT source; ours is one sentence
        if "image/svg+xml" in drawn:
            drawn["image/svg+xml"] = accessible_svg(drawn["image/svg+xml"], self.summary)
        return {**bundle({"text/plain": lambda: self.summary}, include, exclude), **drawn}

    def svg(self) -> str:
        try:
            return accessible_svg(str(self.pipe(format="svg", encoding="utf-8")), self.summary)
        except graphviz.ExecutableNotFound as e:
            raise ToolMissing("graph.dot_missing") from e


def accessible_svg(svg: str, text: str) -> str:
    """The picture's text alternative inside the SVG: ``role="img"`` and ``aria-label`` on ``<svg>``,
    and a ``<title>`` as its first child (what a screen reader and a tooltip read).

    >>> accessible_svg('<svg width="8pt"><g/></svg>', 'a & b')
    '<svg role="img" aria-label="a &amp; b" width="8pt"><title>a &amp; b</title><g/></svg>'
    """
    if not text:
        return svg
    m = re.search(r"<svg\b[^>]*>", svg)
    if not m:
        return svg
    safe = html.escape(text, quote=True)
    tag = m.group(0).replace("<svg", f'<svg role="img" aria-label="{safe}"', 1)
    return f"{svg[:m.start()]}{tag}<title>{safe}</title>{svg[m.end():]}"


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
    g.summary = t("graph.summary", images=t("count.images", n=len(snap.images)),
                  layers=t("count.layers", n=len(drawn)), shared=sum(1 for c in drawn if users[c] > 1),
                  containers=t("count.running", n=len(snap.containers)))
    return g


def _dot_esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def layer_graph(lab: Any, refs: list[str] | None = None) -> LayerGraph:
    """The layer graph of ``refs`` (default: every image) on ``lab``'s engine."""
    with lab._errors(ref=", ".join(refs or [])):
        return build_layer_graph(graph_snapshot(lab.api, refs))
