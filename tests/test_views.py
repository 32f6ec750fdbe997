"""Views on snapshots taken from the real engine: the pull widget's Python state, HTML exports."""

from __future__ import annotations

import time

import pytest

from kernel_ext.pull import PullProgress, follow_pull_stream
from kernel_ext.views.pull import PullView

pytestmark = pytest.mark.engine


def test_pull_view_reaches_100_percent_per_layer(lab, client) -> None:
    try:
        client.images.remove("dockerlab/greeting:v2")
    except Exception:
        pass
    events = list(lab.api.pull("dockerlab/greeting", tag="v2", stream=True, decode=True))
    view = PullView("dockerlab/greeting:v2")
    snapshots: list[float] = []

    def listener(p: PullProgress) -> None:
        view.update(p)
        snapshots.append(min((b.value for b, _ in view.bars.values()), default=0.0))

    follow_pull_stream(events, PullProgress("dockerlab/greeting:v2"), listener, interval=0.0)
    assert len(view.bars) >= 1
    assert all(bar.value == 1.0 and bar.bar_style == "success" for bar, _ in view.bars.values())
    assert "Status:" in view.log.value and view.box.done
    assert repr(view.box) == "<正在拉取 dockerlab/greeting:v2>"  # stable text/plain for nbval
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    lab.remove("dockerlab/greeting:v2")


def test_results_degrade_to_text_and_static_html(lab, unique) -> None:
    lab.pull("busybox", progress=False)
    c = lab.run("busybox", ["sh", "-c", "mkdir -p /srv/a && echo x > /srv/a/f && sleep 60"], name=f"v-{unique}")
    for _ in range(100):  # wait for the condition (the file exists), not for a fixed time
        if lab.exec(c, ["test", "-f", "/srv/a/f"]).exit_code == 0:
            break
        time.sleep(0.05)
    tree = lab.diff(c)
    b = tree._repr_mimebundle_()
    assert "A /srv/a/f" in b["text/plain"] and "<details" in b["text/html"]
    for obj in (lab.images(), lab.history("busybox"), lab.disk_usage()):
        bundle = obj._repr_mimebundle_()
        assert bundle["text/plain"] and bundle["text/html"]


def test_vm_compare_live_view_closes_into_an_empty_output(monkeypatch) -> None:
    """Chapter 2: the comparison's live view gives its place up when the run is over (the result shows
    the table), so the saved chapter keeps no widget showing "disconnected"."""
    from IPython.testing.globalipapp import get_ipython

    from kernel_ext.vmcompare import LiveProgress, compare, default_cache_dir, qemu

    shell = get_ipython()  # the one test shell (test_magics may have started it: start_ipython gives None then)
    published: list[dict] = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, source=None, *, transient=None, update=False, **kw:
                        published.append({"data": data, "id": (transient or {}).get("display_id"), "update": update}))
    monkeypatch.setattr(qemu, "QEMU", "qemu-system-does-not-exist")  # quick: the native side only
    live = LiveProgress()
    compare(None, runs=1, density=0, progress=live, cache_dir=default_cache_dir())
    shown = [p for p in published if "application/vnd.jupyter.widget-view+json" in p["data"]]
    assert len(shown) == 1 and shown[0]["id"]
    assert published[-1] == {"data": {"text/plain": ""}, "id": shown[0]["id"], "update": True}
    assert live.box is None  # the widgets are closed
