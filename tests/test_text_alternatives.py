"""Issue 21 item 11: every picture the course draws says in words what it shows; ✔/✘ never by colour alone.

Renderers only, on snapshots of a real engine (tests/snapshots) and a Comparison filled with figures
from a run on the lab machine: no engine, no VM.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest

from kernel_ext.check import CheckResult
from kernel_ext.graph import GraphSnapshot, graph_image
from kernel_ext.views.checks import check_html, check_text
from kernel_ext.views.graph import accessible_svg, build_layer_graph
from kernel_ext.vmcompare.results import Comparison

SNAP = json.loads((Path(__file__).parent / "snapshots" / "engine-28.5-containerd" / "images.json").read_text())


def _graph():  # type: ignore[no-untyped-def]
    listed = {i["Id"]: i for i in SNAP["images_json_manifests"]}
    return build_layer_graph(GraphSnapshot(tuple(graph_image(info, SNAP["history"][iid], listed[iid])
                                                 for iid, info in SNAP["inspect"].items())))


def test_layer_graph_svg_carries_its_summary_as_title_and_label() -> None:
    g = _graph()
    svg = g._repr_mimebundle_()["image/svg+xml"]
    root = re.search(r"<svg\b[^>]*>", svg)
    assert root and 'role="img"' in root.group(0)
    label = re.search(r'aria-label="([^"]*)"', root.group(0))
    assert label and html.unescape(label.group(1)) == g.summary
    first_child = svg[root.end():].lstrip()
    assert first_child.startswith(f"<title>{html.escape(g.summary)}</title>")
    assert g.summary.startswith("层关系图") and str(len(SNAP["inspect"])) in g.summary
    assert g.svg().count("<title>" + html.escape(g.summary)) == 1


def test_accessible_svg_escapes_and_leaves_foreign_text_alone() -> None:
    assert accessible_svg("not an svg", "x") == "not an svg"
    out = accessible_svg('<svg a="1"><g/></svg>', 'say "<hi>"')
    assert out == ('<svg role="img" aria-label="say &quot;&lt;hi&gt;&quot;" a="1">'
                   '<title>say &quot;&lt;hi&gt;&quot;</title><g/></svg>')


def _comparison(lang: str) -> Comparison:
    c = Comparison(runs=3, accel="tcg", machine="microvm", finished=True, host_available_mib=22626, lang=lang)
    for v in (0.26, 0.26, 0.30):  # figures from a run on the lab machine (TCG, 2 cores)
        c.container.start_s.add(v)
    for v in (2.53, 2.66, 2.81):
        c.vm.start_s.add(v)
    c.container.part("cgroup").add(10.2)
    c.container.part("shim_pss").add(2.2)
    c.container.mem_mib.add(12.4)
    c.vm.mem_mib.add(203.0)
    c.vm.bench_ratio.add(4.05)
    c.container.bench_ratio.add(1.02)
    c.native_bench_ns = 1000
    return c


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_chart_caption_says_what_each_panel_shows(lang: str) -> None:
    from PIL import Image

    c = _comparison(lang)
    view = c.chart()
    caption = repr(view)
    # each panel's numbers, as the picture draws them (medians; memory = cgroup + shim)
    for number in ("0.26", "2.66", "12.4", "203", f"{c.ratio(c.container):.2f}", f"{c.ratio(c.vm):.2f}", "TCG"):
        assert number in caption, (number, caption)
    # Chinese when a CJK font can draw the chart (else the chart and its caption are English)
    assert caption.startswith("图：" if lang == "zh" and view.rc.get("font.sans-serif") else "Chart: ")
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"} and bundle["text/plain"] == caption
    png = Image.open(io.BytesIO(view.png()))
    assert png.info.get("Description") == caption and png.info.get("Title")


def test_check_verdict_is_never_by_colour_alone() -> None:
    """✔/✘ and the reason are in the text itself; the colour only repeats them."""
    for ok in (True, False):
        r = CheckResult(ok, "容器 web 正在运行" if ok else "没有找到容器 web")
        text, page = check_text(r), check_html(r)
        assert text.startswith("✔ " if ok else "✘ ") and r.reason in text
        visible = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert visible == text  # the page shows the same words as the text, colour or no colour
