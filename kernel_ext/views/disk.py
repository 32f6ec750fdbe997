"""``docker system df`` as the CLI prints it (sizes with four significant digits)."""

from __future__ import annotations

from ..formatting import esc, human_size
from ..images import DiskUsage
from ..display import Renderers, renderers

__all__ = ["disk_usage_text"]


def disk_usage_text(usage: DiskUsage) -> str:
    head = ("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")
    body = []
    for kind, total, active, size, reclaim in usage.rows:
        pct = f" ({100 * reclaim // size}%)" if size else ""
        body.append((kind, str(total), str(active), human_size(size, 4), human_size(reclaim, 4) + pct))
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *body])


@renderers.register
def _(usage: DiskUsage) -> Renderers:
    return {"text/plain": lambda: disk_usage_text(usage),
            "text/html": lambda: f"<pre>{esc(disk_usage_text(usage))}</pre>"}
