"""Pure parts on snapshots taken from a real Docker Engine 28.5 with the containerd image store
(Docker 29's default): the pull stream, image sizes, the layer graph and ``docker save``'s OCI layout.

The snapshots in ``tests/snapshots/engine-28.5-containerd/`` were recorded from the course images
(built by ``labctl.images.publish``) on that engine; ``snap/twice`` is hello-world plus two commits
that each write ``/etc/motd`` (``docker cp`` into a created container, then ``commit``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kernel_ext.graph import GraphSnapshot, graph_image, image_parents
from kernel_ext.image_efficiency import efficiency_from_layers, read_saved_layers
from kernel_ext.images import ImageTable, image_rows
from kernel_ext.pull import PullProgress, follow_pull_stream
from kernel_ext.views.graph import build_layer_graph

SNAP = Path(__file__).parent / "snapshots" / "engine-28.5-containerd"


@pytest.fixture(scope="module")
def streams() -> dict[str, list[dict[str, Any]]]:
    return dict(json.loads((SNAP / "pull_streams.json").read_text()))


@pytest.fixture(scope="module")
def engine() -> dict[str, Any]:
    return dict(json.loads((SNAP / "images.json").read_text()))


def _by_tag(engine: dict[str, Any], tag: str) -> dict[str, Any]:
    return next(i for i in engine["inspect"].values() if tag in (i.get("RepoTags") or []))


def test_the_stream_has_no_sizes_for_small_layers_and_counts_extraction_in_seconds(streams) -> None:
    nginx = streams["nginx:latest"]
    assert not any(e.get("status") in ("Verifying Checksum", "Already exists") for e in nginx)
    assert {e["progressDetail"].get("units") for e in nginx if e.get("status") == "Extracting"} == {"s"}
    prog = PullProgress("nginx:latest")
    seen: list[float] = []
    for e in nginx:
        prog.apply(e)
        seen += [x.fraction for x in prog.layers.values()]
        if e.get("status") == "Extracting":  # downloaded, extracting: half way, never past it
            assert prog.layers[e["id"]].fraction == 0.5 and prog.layers[e["id"]].extract_seconds >= 1
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert all(x.fraction == 1.0 for x in prog.layers.values())
    busybox = follow_pull_stream(streams["busybox:1.35"], PullProgress("busybox:1.35"))
    assert all(x.total == 0 for x in busybox.layers.values())  # ~1 MB layer, no Downloading event


def test_the_manifest_fills_in_sizes_and_the_layers_the_stream_leaves_out(streams) -> None:
    # greeting:v1 = busybox's 3 layers + 1; pulled after busybox, the stream mentions only the new one
    greet = follow_pull_stream(streams["dockerlab/greeting:v1"], PullProgress("dockerlab/greeting:v1"))
    assert list(greet.layers) == ["1a1eb060b42f"]
    busybox = follow_pull_stream(streams["busybox:1.35"], PullProgress("busybox:1.35"))
    # layer digests and sizes as the registry's manifest lists them (recorded with the streams)
    manifest = [("sha256:4358d2bbd8d897713639aae6b4b77e95a97f79bcf4ee12470cd5c9f94a89e972", 1079948),
                ("sha256:10a7bf7c8486efcadd5fa300d0f537fcf0da1fd57963b170f9365a6306a1b9c2", 3454),
                ("sha256:d8a562740acfaba3a4eebc6dedbe9e9252d86731f4505c6053e5d52bc539a51b", 244)]
    busybox.add_manifest(manifest)
    assert [(x.id, x.total, x.already_present) for x in busybox.layers.values()] == [
        ("4358d2bbd8d8", 1079948, False), ("10a7bf7c8486", 3454, False), ("d8a562740acf", 244, False)]
    greet.add_manifest([*manifest, ("sha256:1a1eb060b42f68437ad8b5102ac344c864b9de6282bbd67a8710eb733e567451", 113)])
    assert [x.already_present for x in greet.layers.values()] == [True, True, True, False]
    assert list(greet.layers)[-1] == "1a1eb060b42f" and greet.layers["1a1eb060b42f"].total == 113


def test_image_rows_carry_disk_usage_and_content_size(engine) -> None:
    assert engine["api_version"] >= "1.47"
    rows = {r.ref: r for r in image_rows(engine["images_json_manifests"])}
    nginx = rows["nginx:latest"]
    # Size is disk usage (compressed content + unpacked snapshot); content is what a pull downloads
    assert nginx.size > 2 * nginx.content_size > 0
    assert nginx.content_size == 40_969_916 and nginx.size == 147_642_044
    assert rows["busybox:1.35"].id == rows["busybox:latest"].id  # one image, two tags
    table = ImageTable(tuple(rows.values()))
    assert table.content_known and "CONTENT SIZE" in table.html() and "41MB" in table.html()
    assert "148MB" in table.text() and "CONTENT" not in table.text()  # text: CLI 28's `image ls`
    # inspect's Size is the content size under this store, not what `image ls` shows
    assert _by_tag(engine, "nginx:latest")["Size"] == nginx.content_size


def test_image_ids_are_manifest_digests(engine) -> None:
    for img in engine["images_json_manifests"]:
        assert img["Descriptor"]["digest"] == img["Id"]
        for d in img["RepoDigests"]:
            assert d.endswith(img["Id"])


def _graph_images(engine: dict[str, Any]) -> list[Any]:
    listed = {i["Id"]: i for i in engine["images_json_manifests"]}
    return [graph_image(info, engine["history"][iid], listed[iid]) for iid, info in engine["inspect"].items()]


def test_parents_come_from_layer_prefixes(engine) -> None:
    imgs = _graph_images(engine)
    assert not any(_by_tag(engine, t).get("ContainerConfig") for t in ("nginx:latest", "busybox:1.35"))
    names = {i.id: i.tags[0] for i in imgs}
    parents = {names[c]: names[p] for c, p in image_parents(imgs).items()}
    assert parents["dockerlab/greeting:v1"] in ("busybox:1.35", "busybox:latest")
    assert parents["snap/twice:step2"] == "snap/twice:step1"
    assert parents["snap/twice:step1"] == "hello-world:latest"
    assert "nginx:latest" not in parents and "redis:latest" not in parents  # they share debian, no image


def test_layer_graph_names_layers_by_diff_id_and_draws_shared_ones_once(engine) -> None:
    imgs = _graph_images(engine)
    g = build_layer_graph(GraphSnapshot(tuple(sorted(imgs, key=lambda i: i.tags))))
    nginx = _by_tag(engine, "nginx:latest")["RootFS"]["Layers"]
    redis = _by_tag(engine, "redis:latest")["RootFS"]["Layers"]
    assert nginx[0] == redis[0]
    assert g.source.count(f'label="{nginx[0][7:19]}') == 1  # debian's layer: one node for both
    assert all(f'label="{d[7:19]}' in g.source for d in nginx)
    assert "FROM snap/twice:step1" in g.source  # the parent, as the image node's tooltip
    assert "7 images" in g.summary or "7 个镜像" in g.summary


def test_efficiency_reads_the_oci_layout_docker_save_writes() -> None:
    raw = (SNAP / "twice.save.tar").read_bytes()
    layers = read_saved_layers(raw)
    assert len(layers) == 3 and [p for p, _ in layers[0]] == ["hello"]
    eff = efficiency_from_layers("snap/twice:step2", layers)
    assert eff.inefficient == (("etc/motd", 2, 200 + 240),)
    assert eff.total_bytes == sum(s for layer in layers for _, s in layer)
