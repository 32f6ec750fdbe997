"""Charts of a :class:`Comparison` (matplotlib): start-up, memory, CPU. A pure function of the snapshot.

>>> fig = comparison_figure(c)          # doctest: +SKIP
>>> fig.savefig("/tmp/vmcompare.png")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from ..messages import language, t
from ..display import bundle
from .results import Comparison

__all__ = ["ChartView", "chart_caption", "cjk_font", "comparison_figure"]


class ChartView:
    """A figure as a notebook shows it: PNG (rendered by ``savefig``, no pyplot backend needed)
    and a text/plain caption that says what the picture shows (its text alternative, also stored in
    the PNG as its Title and Description). ``.figure`` is the matplotlib Figure."""

    def __init__(self, figure: Any, caption: str, rc: dict[str, Any] | None = None) -> None:
        self.figure = figure
        self.caption = caption
        self.rc = rc or getattr(figure, "dockerlab_rc", {})

    def __repr__(self) -> str:
        return self.caption

    def png(self) -> bytes:
        import io

        import matplotlib

        buf = io.BytesIO()
        with matplotlib.rc_context(self.rc):  # type: ignore[arg-type]  # text is laid out when drawn: the CJK font must apply then
            title = self.figure.get_suptitle() if hasattr(self.figure, "get_suptitle") else ""
            self.figure.savefig(buf, format="png", dpi=100,
                                metadata={"Title": title or self.caption, "Description": self.caption})
        return buf.getvalue()

    def _repr_mimebundle_(self, include: Container[str] | None = None, exclude: Container[str] | None = None,
                          **kwargs: Any) -> dict[str, Any]:
        import base64

        return bundle({"image/png": lambda: base64.b64encode(self.png()).decode(),
                       "text/plain": lambda: self.caption}, include, exclude)

CT_COLOUR, VM_COLOUR, NATIVE_COLOUR = "#2a7ab9", "#d9822b", "#8a8a8a"


def cjk_font() -> str | None:
    """A font that has Chinese glyphs, if matplotlib can find one (e.g. fonts-wqy-microhei)."""
    from matplotlib import font_manager

    for f in font_manager.fontManager.ttflist:
        if any(k in f.name for k in ("CJK", "WenQuanYi", "Hei", "Droid Sans Fallback", "AR PL")):
            return str(f.name)
    return None


def _lang(c: Comparison) -> tuple[str, str | None]:
    """The chart's language: Chinese only when a font can draw it (else English, not empty boxes)."""
    lang = c.lang or language()
    font = cjk_font() if lang == "zh" else None
    return (lang if lang != "zh" or font else "en"), font


def _num(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def chart_caption(c: Comparison) -> str:
    """What the chart shows, in words (its text alternative): the title, then each panel's medians.

    The same numbers as the bars and boxes, so a learner who cannot see the picture reads it too.
    """
    lang, _ = _lang(c)
    parts = c.container.mem_parts
    cg = parts["cgroup"].median if parts.get("cgroup") else None
    shim = parts["shim_pss"].median if parts.get("shim_pss") else None
    ct_mem = cg + (shim or 0.0) if cg is not None else c.container.mem_mib.median
    return t("vm.chart.alt", lang=lang, title=t("vm.p.title", lang=lang), accel=(c.accel or "—").upper(),
             n=c.runs, start=t("vm.m.chart_start", lang=lang), mem=t("vm.m.chart_mem", lang=lang),
             cpu=t("vm.m.chart_cpu", lang=lang), ct=t("vm.t.container", lang=lang),
             vm=t("vm.t.vm_short", lang=lang),
             ct_start=_num(c.container.start_s.median, ".2f"), vm_start=_num(c.vm.start_s.median, ".2f"),
             ct_mem=_num(ct_mem, ".1f"), vm_mem=_num(c.vm.mem_mib.median, ".0f"),
             ct_cpu=_num(c.ratio(c.container), ".2f"), vm_cpu=_num(c.ratio(c.vm), ".2f"))


def comparison_figure(c: Comparison) -> Any:
    """A figure with three panels: start-up (box + points), memory (stacked bars), CPU (× native)."""
    import matplotlib
    from matplotlib.figure import Figure

    lang, font = _lang(c)
    rc: dict[str, Any] = {"font.size": 9}
    if font:
        rc["font.sans-serif"] = [font, *matplotlib.rcParams["font.sans-serif"]]
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        ax_start, ax_mem, ax_cpu = fig.subplots(1, 3)
        ct, vm = t("vm.t.container", lang=lang), t("vm.t.vm_short", lang=lang)
        _start_panel(ax_start, c, ct, vm, lang)
        _memory_panel(ax_mem, c, ct, vm, lang)
        _cpu_panel(ax_cpu, c, ct, vm, lang)
        accel = (c.accel or "—").upper()
        fig.suptitle(f"{t('vm.p.title', lang=lang)} · {accel} · {c.machine or '—'} · n={c.runs}")
    fig.dockerlab_rc = rc  # type: ignore[attr-defined]
    return fig


def _start_panel(ax: Any, c: Comparison, ct: str, vm: str, lang: str) -> None:
    data = [(ct, c.container.start_s.values, CT_COLOUR), (vm, c.vm.start_s.values, VM_COLOUR)]
    present = [(name, vals, col) for name, vals, col in data if vals]
    if present:
        box = ax.boxplot([v for _, v, _ in present], widths=0.5, patch_artist=True,
                         medianprops={"color": "black"})
        ax.set_xticks(range(1, len(present) + 1), [n for n, _, _ in present])
        ax.set_xlim(0.5, len(present) + 0.8)
        for patch, (_, vals, col) in zip(box["boxes"], present):
            patch.set_facecolor(col)
            patch.set_alpha(0.45)
        for i, (_, vals, col) in enumerate(present, start=1):
            ax.scatter([i] * len(vals), vals, color=col, s=14, zorder=3)
            med = sorted(vals)[len(vals) // 2]
            ax.annotate(f"{med:.2f} s", (i + 0.3, med), va="center")
    ax.set_ylim(bottom=0)
    ax.set_title(t("vm.m.chart_start", lang=lang))


def _memory_panel(ax: Any, c: Comparison, ct: str, vm: str, lang: str) -> None:
    parts = c.container.mem_parts
    cg = parts["cgroup"].median if parts.get("cgroup") else None
    shim = parts["shim_pss"].median if parts.get("shim_pss") else None
    vm_mem = c.vm.mem_mib.median
    if cg is not None:
        ax.bar(ct, cg, color=CT_COLOUR, label="cgroup")
        ax.bar(ct, shim or 0.0, bottom=cg, color=CT_COLOUR, alpha=0.45, label="containerd-shim (PSS)")
        ax.annotate(f"{cg + (shim or 0):.1f} MiB", (0, cg + (shim or 0)), ha="center",
                    xytext=(0, 3), textcoords="offset points")
    if vm_mem is not None:
        ax.bar(vm, vm_mem, color=VM_COLOUR, label="qemu (PSS)")
        ax.annotate(f"{vm_mem:.0f} MiB", (1 if cg is not None else 0, vm_mem), ha="center",
                    xytext=(0, 3), textcoords="offset points")
    if cg is not None or vm_mem is not None:
        ax.legend(loc="upper left", fontsize=7)
    ax.margins(y=0.12)  # room for the value labels above the bars
    ax.set_title(t("vm.m.chart_mem", lang=lang))


def _cpu_panel(ax: Any, c: Comparison, ct: str, vm: str, lang: str) -> None:
    bars = [(t("vm.m.native", lang=lang), 1.0 if c.native_bench_ns else None, NATIVE_COLOUR),
            (ct, c.ratio(c.container), CT_COLOUR), (f"{vm} ({(c.accel or '—').upper()})", c.ratio(c.vm), VM_COLOUR)]
    shown = [(n, v, col) for n, v, col in bars if v is not None]
    for i, (name, v, col) in enumerate(shown):
        ax.bar(name, v, color=col)
        ax.annotate(f"{v:.2f}×", (i, v), ha="center", xytext=(0, 3), textcoords="offset points")
    ax.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
    ax.margins(y=0.12)
    ax.set_title(t("vm.m.chart_cpu", lang=lang))
