"""What ``docker image rm`` did and why anything stayed, and what ``%lab cleanup`` removed."""

from __future__ import annotations

from ..formatting import esc
from ..messages import t
from ..removal import CleanupReport, RemovalReport
from ..display import Renderers, renderers

__all__ = ["cleanup_text", "removal_html", "removal_lines"]


def removal_lines(report: RemovalReport) -> list[str]:
    out = [f"Untagged: {u}" for u in report.untagged] + [f"Deleted: {d}" for d in report.deleted]
    out += [f"Kept: {k.why}" for k in report.kept] + [f"Error: {e}" for e in report.errors]
    return out or [t("rm.none")]


def removal_html(report: RemovalReport) -> str:
    items = "".join(
        f"<li style='color:{c}'>{esc(line)}</li>"
        for line, c in ((ln, "#cf222e" if ln.startswith("Error") else "#9a6700" if ln.startswith("Kept")
                         else "inherit") for ln in removal_lines(report)))
    return f"<ul class='dockerlab-rm'>{items}</ul>"


def cleanup_text(report: CleanupReport) -> str:
    counts = (("count.containers", report.containers), ("count.images", report.images),
              ("count.volumes", report.volumes), ("count.networks", report.networks))
    return t("cleanup.done", items=t("list.sep").join(t(key, n=len(found)) for key, found in counts))


@renderers.register
def _removal(report: RemovalReport) -> Renderers:
    return {"text/plain": lambda: "\n".join(removal_lines(report)), "text/html": lambda: removal_html(report),
            "lines": lambda: removal_lines(report)}


@renderers.register
def _cleanup(report: CleanupReport) -> Renderers:
    return {"text/plain": lambda: cleanup_text(report)}
