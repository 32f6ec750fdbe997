"""Views of a :class:`Comparison`: the book's table 2.7 with the measured figure beside each claim.

Pure functions of the snapshot (no engine, no qemu): text for a terminal, HTML for JupyterLab.
"""

from __future__ import annotations

import html
import unicodedata

from ..messages import t
from ..display import Renderers, renderers
from .results import Comparison, Density, Series, Side

__all__ = ["explanations", "render_html", "render_text", "rows"]


def _num(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def _series(s: Series, unit: str, lang: str | None, scale: float = 1.0) -> str:
    if s.median is None or s.lo is None or s.hi is None:
        return t("vm.m.na", lang=lang)
    m, lo, hi = s.median * scale, s.lo * scale, s.hi * scale
    if len(s.values) == 1:
        return f"{_num(m)} {unit}"
    return f"{_num(m)} {unit} ({_num(lo)}–{_num(hi)})"


def _count(c: Comparison, side: Side, d: Density, lang: str | None) -> str:
    parts = []
    n = c.fit(side, d)
    if n is not None:
        parts.append(t("vm.m.fit", lang=lang, n=n, budget=int(c.host_available_mib)))
    if d.tried:
        secs = f"{d.seconds:.1f}" if d.seconds is not None else "—"
        parts.append(t("vm.m.started", lang=lang, ok=d.ready, k=d.want, seconds=secs))
    return "; ".join(parts) or t("vm.m.na", lang=lang)


NOISE = 0.9  # a ratio below this says the native runs were slowed by other load, not that it ran faster


def _perf(c: Comparison, side: Side, lang: str | None) -> str:
    r = c.ratio(side)
    if not r:
        return t("vm.m.na", lang=lang)
    return t("vm.m.native_noisy" if r < NOISE else "vm.m.native_x", lang=lang, x=f"{r:.2f}")


def _disk(side: Side, key: str, lang: str | None, **kw: str) -> str:
    if side.disk_bytes is None:
        return t("vm.m.na", lang=lang)
    return t(key, lang=lang, mb=f"{side.disk_bytes / 1e6:.1f}", **kw)


def rows(c: Comparison) -> list[tuple[str, str, str, str, str]]:
    """(feature, container in the book, container measured, VM in the book, VM measured)."""
    lg = c.lang
    return [
        (t("vm.t.start", lang=lg), t("vm.b.start_ct", lang=lg), _series(c.container.start_s, "s", lg),
         t("vm.b.start_vm", lang=lg), _series(c.vm.start_s, "s", lg)),
        (t("vm.t.disk", lang=lg), t("vm.b.disk_ct", lang=lg), _disk(c.container, "vm.m.disk_ct", lg, image="busybox"),
         t("vm.b.disk_vm", lang=lg), _disk(c.vm, "vm.m.disk_vm", lg)),
        (t("vm.t.perf", lang=lg), t("vm.b.perf_ct", lang=lg), _perf(c, c.container, lg),
         t("vm.b.perf_vm", lang=lg), _perf(c, c.vm, lg)),
        (t("vm.t.count", lang=lg), t("vm.b.count_ct", lang=lg), _count(c, c.container, c.density_ct, lg),
         t("vm.b.count_vm", lang=lg), _count(c, c.vm, c.density_vm, lg)),
        (t("vm.t.memory", lang=lg), t("vm.b.memory", lang=lg), _series(c.container.mem_mib, "MiB", lg),
         t("vm.b.memory", lang=lg), _series(c.vm.mem_mib, "MiB", lg)),
    ]


def _header(c: Comparison) -> tuple[str, ...]:
    lg = c.lang
    book, meas = t("vm.t.book", lang=lg), t("vm.t.measured", lang=lg)
    ct, vm = t("vm.t.container", lang=lg), t("vm.t.vm", lang=lg)
    return (t("vm.t.feature", lang=lg), f"{ct}·{book}", f"{ct}·{meas}", f"{vm}·{book}", f"{vm}·{meas}")


def explanations(c: Comparison) -> list[str]:
    """One short paragraph per figure, then the published reference figures (marked as such)."""
    lg = c.lang
    accel = c.accel.upper() or "TCG"
    why = "vm.x.cpu_kvm" if c.accel == "kvm" else "vm.x.cpu_tcg"
    out = [t("vm.x.start", lang=lg), t("vm.x.memory", lang=lg), t("vm.x.disk", lang=lg),
           t("vm.x.cpu", lang=lg, accel=accel, accel_note=t(why, lang=lg)), t("vm.x.count", lang=lg)]
    if c.container.kernel and c.vm.kernel:
        out.append(t("vm.x.kernel", lang=lg, host=c.container.kernel, guest=c.vm.kernel))
    out.append(t("vm.x.published", lang=lg))
    return out


def _summary(c: Comparison) -> str:
    s = t("vm.m.summary", lang=c.lang, accel=(c.accel or "—").upper(), machine=c.machine or "—",
          n=c.runs, seconds=f"{c.elapsed_s:.1f}")
    return s if c.finished else f"{s} {t('vm.m.running', lang=c.lang)}"


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


def render_text(c: Comparison) -> str:
    table = [_header(c), *rows(c)]
    widths = [max(_width(r[i]) for r in table) for i in range(5)]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(r)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", _summary(c)]
    if c.notes:
        lines += ["", t("vm.m.notes", lang=c.lang) + ":"] + [f"- {n.text(c.lang)}" for n in c.notes]
    if c.finished:
        lines += ["", t("vm.m.why", lang=c.lang) + ":"] + [f"- {p}" for p in explanations(c)]
    return "\n".join(lines)


def render_html(c: Comparison) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in _header(c))
    body = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in r) + "</tr>" for r in rows(c))
    parts = [f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
             f"<p>{e(_summary(c))}</p>"]
    if c.notes:
        items = "".join(f"<li>{e(n.text(c.lang))}</li>" for n in c.notes)
        parts.append(f"<p><b>{e(t('vm.m.notes', lang=c.lang))}</b></p><ul>{items}</ul>")
    if c.finished:
        items = "".join(f"<li>{e(p)}</li>" for p in explanations(c))
        parts.append(f"<p><b>{e(t('vm.m.why', lang=c.lang))}</b></p><ul>{items}</ul>")
    return "<div class='dockerlab-vmcompare'>" + "".join(parts) + "</div>"


@renderers.register
def _(c: Comparison) -> Renderers:
    return {"text/plain": lambda: render_text(c), "text/html": lambda: render_html(c)}
