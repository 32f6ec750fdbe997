"""kernel_ext against the real lab engine: every API function, its views' text, and bad input."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

import kernel_ext
from kernel_ext import check, efficiency, layer_graph
from kernel_ext.errors import (
    BadReference,
    Conflict,
    ContainerNotFound,
    EngineUnavailable,
    ImageNotFound,
    LabError,
    PortInUse,
)

from kernel_ext.pull import PullProgress, follow_pull_stream

pytestmark = pytest.mark.engine
_SCRATCH = os.path.join(tempfile.gettempdir(), "dl-*")  # throwaway engines (the suite gives a TMPDIR)


def test_pull_reports_layers_digest_and_presence(fresh_engine) -> None:
    """On an engine nobody else uses, so what is 'already present' is known exactly."""
    lab = kernel_ext.connect(fresh_engine.dockerlab_engine.host, session="test-pull")
    # Under the containerd store, blobs shared with another image outlive `rmi`: empty the engine.
    for c in fresh_engine.containers.list(all=True):
        c.remove(force=True)
    for img in fresh_engine.images.list(all=True):
        fresh_engine.images.remove(img.id, force=True)
    seen: list[int] = []
    result = lab.pull("busybox:1.35", progress=lambda p: seen.append(len(p.layers)))
    assert result.image_id.startswith("sha256:") and result.digest.startswith("sha256:")
    assert len(result.layers) == 3 and not any(x.already_present for x in result.layers)
    assert result.downloaded_bytes > 1_000_000  # busybox-static is ~1 MB compressed
    assert result.log[-2].startswith("Status: Downloaded newer image")
    assert seen and seen[-1] == 3  # the listener saw the final state
    text = result._repr_mimebundle_()["text/plain"]
    assert "Pull complete" in text and f"Digest: {result.digest}" in text
    # a second tag of a present image: nothing downloaded
    again = lab.pull("busybox:latest", progress=False)
    assert again.downloaded_bytes == 0 and "busybox:latest" in again.summary()
    # an image on top of busybox's layers: those are reported as already present
    greet = lab.pull("dockerlab/greeting:v1", progress=False)
    assert sum(x.already_present for x in greet.layers) == 3 and len(greet.layers) == 4


def test_pull_model_from_a_recorded_real_stream(lab) -> None:
    events = list(lab.api.pull("dockerlab/greeting", tag="v2", stream=True, decode=True))
    prog = follow_pull_stream(events, PullProgress("dockerlab/greeting:v2"))
    assert prog.done and prog.digest.startswith("sha256:")
    assert all(x.fraction == 1.0 for x in prog.layers.values())
    lab.remove("dockerlab/greeting:v2")


def test_images_filters_shared_and_unique(lab) -> None:
    lab.pull("nginx", progress=False)
    lab.pull("redis", progress=False)
    lab.pull("hello-world", progress=False)
    table = lab.images(filters={"reference": ["nginx", "redis"]}, shared=True)
    rows = {r.ref: r for r in table.rows}
    assert {"nginx:latest", "redis:latest"} <= set(rows)
    assert rows["nginx:latest"].shared_size > 70_000_000  # debian's layer is shared with redis
    assert rows["nginx:latest"].unique_size == rows["nginx:latest"].size - rows["nginx:latest"].shared_size
    assert "REPOSITORY" in table.text() and "nginx" in table.text()
    nginx = rows["nginx:latest"]  # containerd store: compressed content < disk usage; graph drivers: -1
    assert nginx.content_size == -1 or 0 < nginx.content_size < nginx.size
    since = lab.images(filters={"since": "hello-world"}).refs()
    assert "hello-world:latest" not in since
    labelled = lab.images(filters={"label": "org.opencontainers.image.title=nginx"}).refs()
    assert labelled == ["nginx:latest"] or "nginx:latest" in labelled
    assert "Images" in lab.disk_usage().text()


def test_run_exec_diff_commit_history_cleanup(lab, unique) -> None:
    c = lab.run("nginx", name=f"web-{unique}")
    lab.exec(c, ["sh", "-c", "echo '<h1>Hello, Docker!</h1>' > /usr/share/nginx/html/index.html"])
    tree = lab.diff(c)
    assert "C /usr/share/nginx/html/index.html" in tree.lines()
    assert "<details" in tree.html()
    img = lab.commit(c, f"nginx:v2-{unique}", author="Learner <l@example.com>", message="change the page")
    hist = lab.history(f"nginx:v2-{unique}")
    assert hist.rows[0].comment == "change the page"
    assert any(r.id == "<missing>" for r in hist.rows)
    assert check.expect_file_in_image(f"nginx:v2-{unique}", "/usr/share/nginx/html/index.html",
                                      content="Hello, Docker!", lab=lab)
    report = lab.cleanup()
    assert f"web-{unique}" in report.containers and f"nginx:v2-{unique}" in report.images
    with pytest.raises(ImageNotFound):
        lab.image(img.id)


def test_cleanup_leaves_unlabelled_things_alone(lab, client, unique) -> None:
    lab.pull("busybox", progress=False)
    mine = client.containers.create("busybox", name=f"learner-{unique}")
    try:
        lab.run("busybox", "true", name=f"lab-{unique}")
        assert lab.cleanup().containers == [f"lab-{unique}"]
        assert client.containers.get(f"learner-{unique}")
    finally:
        mine.remove(force=True)


def test_remove_explains_what_stayed(lab, unique) -> None:
    lab.pull("busybox", progress=False)
    lab.client.images.get("busybox").tag("busybox", f"copy-{unique}")
    report = lab.remove(f"busybox:copy-{unique}")
    assert report.untagged == [f"busybox:copy-{unique}"] and not report.deleted
    assert any("busybox:latest" in k.why or "busybox:" in k.why for k in report.kept)
    base = lab.run("busybox", "sleep 60", name=f"base-{unique}")
    lab.commit(base, f"solo:{unique}")
    user = lab.run(f"solo:{unique}", "sleep 60", name=f"hold-{unique}")
    blocked = lab.remove(f"solo:{unique}", "busybox:nope-not-here")
    assert [k.what for k in blocked.kept] == [f"solo:{unique}"]
    assert user.id[:12] in blocked.kept[0].why
    assert blocked.errors and "nope-not-here" in blocked.errors[0]


def test_bad_input_gives_one_lab_error(lab, unique) -> None:
    with pytest.raises(BadReference):
        lab.pull("Not A Name")
    with pytest.raises(ImageNotFound, match="nosuchimage"):
        lab.pull("nosuchimage:1.0", progress=False)
    with pytest.raises(ContainerNotFound):
        lab.diff(f"no-such-{unique}")
    lab.run("busybox", "sleep 60", name=f"dup-{unique}")
    with pytest.raises(Conflict, match=f"dup-{unique}"):
        lab.run("busybox", "sleep 60", name=f"dup-{unique}")
    from labcore.proc import free_port

    port = free_port(18500)
    lab.run("nginx", name=f"p1-{unique}", ports={"80/tcp": port})
    with pytest.raises(PortInUse, match=str(port)):
        lab.run("nginx", name=f"p2-{unique}", ports={"80/tcp": port})
    err = pytest.raises(LabError, lab.history, "nosuch:tag").value
    assert "/" in err.bilingual()


def test_engine_down_is_one_sentence() -> None:
    with pytest.raises(EngineUnavailable, match="./lab up"):
        kernel_ext.connect("unix:///tmp/no-such-engine.sock")


def test_layer_graph_draws_shared_layers_once(lab) -> None:
    lab.pull("nginx", progress=False)
    lab.pull("redis", progress=False)
    g = layer_graph(lab, ["nginx", "redis"])
    svg = g.svg()
    nginx = lab.image("nginx")["Id"][7:19]
    assert svg.startswith("<?xml") and nginx in svg
    base = lab.image("nginx")["RootFS"]["Layers"][0][7:19]  # first layer: chain id == diff id
    assert svg.count(f">{base}<") == 1
    assert "1" in repr(g) and g._repr_mimebundle_()["text/plain"] == repr(g)


def test_efficiency_counts_files_in_more_than_one_layer(lab) -> None:
    lab.pull("nginx", progress=False)
    eff = efficiency(lab, "nginx")
    assert 0.5 < eff.score < 1.0 and eff.wasted_bytes > 0
    assert any(p.endswith("var/lib/dpkg/status") for p, _, _ in eff.inefficient)


def test_checks_render_pass_and_fail(lab, unique) -> None:
    lab.pull("busybox", progress=False)
    ok = check.expect_image("busybox", labels={"org.opencontainers.image.title": "busybox"}, lab=lab)
    wrong_label = check.expect_image("busybox", labels={"org.opencontainers.image.title": "nginx"}, lab=lab)
    assert not wrong_label and "org.opencontainers.image.title=nginx" in wrong_label.reason
    bad = check.expect_image(f"web:{unique}", lab=lab)
    assert ok and not bad and bad.text().startswith("✘")
    with pytest.raises(AssertionError, match=f"web:{unique}"):
        bad.assert_ok()
    assert not check.expect_container(f"none-{unique}", lab=lab)
    assert not check.expect_http("http://127.0.0.1:9/", "x")


def test_registry_down_during_pull_is_one_sentence(lab) -> None:
    from kernel_ext.errors import RegistryUnavailable

    with pytest.raises(RegistryUnavailable, match="./lab up"):
        lab.pull("127.0.0.1:9/nothing/here:v1", progress=False)


def test_dot_missing_names_the_fix(lab, monkeypatch) -> None:
    from kernel_ext.errors import ToolMissing

    lab.pull("hello-world", progress=False)
    g = layer_graph(lab, ["hello-world"])
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing, match="graphviz"):
        g.svg()


def test_throwaway_engine_refuses_a_malformed_daemon_json_then_starts(lab, tmp_path) -> None:
    """Chapter 5: the lab's dockerd, started for real with the learner's file, stops at the trailing
    comma; fixed, the same file starts an engine. Nothing of either engine is left afterwards."""
    import glob

    from kernel_ext.throwaway import start_engine

    f = tmp_path / "daemon.json"
    f.write_text('{\n  "registry-mirrors": [\n    "http://127.0.0.1:5000",\n  ]\n}\n')
    before = set(glob.glob(_SCRATCH))
    refused = start_engine(f, lab)
    assert not refused and "unable to configure the Docker daemon" in refused.reason and "']'" in refused.reason
    f.write_text('{"registry-mirrors": ["http://127.0.0.1:5000"]}\n')
    started = start_engine(f, lab)
    assert started, started.reason
    assert set(glob.glob(_SCRATCH)) == before  # both engines deleted, with their data
    assert not start_engine(tmp_path / "nothing.json", lab)


def test_own_engine_lives_the_edit_restart_info_loop(lab, state, tmp_path) -> None:
    """Chapter 5's loop on an engine of the learner's own (never the lab's): no mirror with ``{}``; the
    file edited and the engine restarted, ``docker info`` lists the mirror and a pull goes through it;
    a malformed edit gives dockerd's reason and no engine; stop() leaves nothing, and the check reads it."""
    import glob

    import docker

    from kernel_ext.exercises import Exercises
    from kernel_ext.progress import Progress
    from kernel_ext.throwaway import OwnEngine, running_engines

    f = tmp_path / "daemon.json"
    f.write_text("{}\n")
    before = set(glob.glob(_SCRATCH))
    check = Exercises(lab, chapter="05", progress=Progress(tmp_path / "progress.json"))
    mine = OwnEngine(f, lab)
    try:
        assert mine.status and mine.running and mine.mirrors() == [], mine.status.reason
        assert mine.host != lab.config.docker_host
        assert not check.ex(4).own_engine_mirror(f"http://{state.mirror}")
        f.write_text(json.dumps({"registry-mirrors": [f"http://{state.mirror}"]}))
        assert mine.restart() and mine.mirrors() == [f"http://{state.mirror}"]
        assert check.ex(4).own_engine_mirror(f"http://{state.mirror}")
        client = docker.DockerClient(base_url=mine.host, timeout=120)
        try:  # the lab's mirror answers inside the learner's engine at the same address (the forwarder)
            client.images.pull("hello-world", tag="latest")
        finally:
            client.close()
        f.write_text('{"registry-mirrors": [,]}')
        refused = mine.restart()
        assert not refused and "unable to configure the Docker daemon" in refused.reason and not mine.running
    finally:
        mine.stop()
    assert not mine.running and mine not in running_engines() and not mine.start()
    assert set(glob.glob(_SCRATCH)) == before
