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
