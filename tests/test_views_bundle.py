"""kernel_ext.views: every result renders through its view, honouring IPython's include/exclude,
on snapshots of a real engine (``tests/snapshots``); no engine needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kernel_ext.check import CheckResult
from kernel_ext.containers import ExecResult, diff_tree, history_table
from kernel_ext.graph import GraphSnapshot, graph_image
from kernel_ext.image_efficiency import efficiency_from_layers
from kernel_ext.images import ImageTable, disk_usage_from, image_rows
from kernel_ext.lab import CleanupReport
from kernel_ext.pull import LayerPull, PullResult
from kernel_ext.removal import RemovalReport
from kernel_ext.display import Displayable, bundle
from kernel_ext.views.graph import build_layer_graph

SNAP = json.loads((Path(__file__).parent / "snapshots" / "engine-28.5-containerd" / "images.json").read_text())


def _results() -> list[Displayable]:
    iid = next(iter(SNAP["history"]))
    return [
        ImageTable(tuple(image_rows(SNAP["images_json_manifests"]))),
        disk_usage_from(SNAP["df"]),
        history_table("x", SNAP["history"][iid]),
        diff_tree("web", [{"Kind": 1, "Path": "/srv/a"}, {"Kind": 0, "Path": "/srv"}]),
        ExecResult(1, "no\n"),
        RemovalReport(untagged=["a:b"]),
        CleanupReport(containers=["c"]),
        CheckResult(False, "nope"),
        PullResult("busybox:latest", "sha256:1", "sha256:2", "Downloaded", (LayerPull("a" * 12, 10, False),),
                   ("Status: Downloaded", "busybox:latest")),
        efficiency_from_layers("x", [[("a", 1)], [("a", 2)]]),
    ]


@pytest.mark.parametrize("result", _results(), ids=lambda r: type(r).__name__)
def test_every_result_renders_through_its_view_and_honours_include_exclude(result: Displayable) -> None:
    full = result._repr_mimebundle_()
    assert full["text/plain"] == result.text() and full["text/plain"]
    assert result._repr_mimebundle_(include={"text/plain"}) == {"text/plain": full["text/plain"]}
    assert "text/plain" not in result._repr_mimebundle_(exclude={"text/plain"})
    assert result._repr_mimebundle_(include={"application/json"}) == {}
    if "text/html" in full:
        assert result._repr_mimebundle_(exclude={"text/plain"}) == {"text/html": full["text/html"]}


def test_only_the_asked_for_types_are_rendered() -> None:
    calls: list[str] = []

    def renderer(mime: str) -> Any:
        return lambda: calls.append(mime) or mime

    assert bundle({"text/plain": renderer("text/plain"), "text/html": renderer("text/html")},
                  exclude=("text/html",)) == {"text/plain": "text/plain"}
    assert calls == ["text/plain"]


def test_layer_graph_keeps_its_sentence_and_honours_include_exclude() -> None:
    listed = {i["Id"]: i for i in SNAP["images_json_manifests"]}
    g = build_layer_graph(GraphSnapshot(tuple(graph_image(info, SNAP["history"][iid], listed[iid])
                                              for iid, info in SNAP["inspect"].items())))
    assert g._repr_mimebundle_(include={"text/plain"}) == {"text/plain": g.summary} and repr(g) == g.summary
    assert set(g._repr_mimebundle_(exclude={"text/plain"})) == {"image/svg+xml"}
