"""Small pure formatting helpers shared by results and views (sizes as the CLI prints them)."""

from __future__ import annotations

import datetime as _dt
import html

__all__ = ["ago", "esc", "human_size", "short_id"]


def human_size(n: float, precision: int = 3) -> str:
    """Decimal units, like the docker CLI: ``image ls`` keeps 3 significant digits, ``system df`` 4.

    >>> human_size(1990000), human_size(13400), human_size(12), human_size(114_100_000, 4)
    ('1.99MB', '13.4kB', '12B', '114.1MB')
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)}B"
            return f"{n:.{precision}g}{unit}"
        n /= 1000
    return f"{n}TB"


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def ago(ts: float | str, now: float | None = None) -> str:
    """'18 seconds ago' as the CLI says it."""
    if isinstance(ts, str):
        ts = _dt.datetime.fromisoformat(ts[:26].rstrip("Z").split(".")[0]).replace(
            tzinfo=_dt.timezone.utc).timestamp()
    now = now if now is not None else _dt.datetime.now(_dt.timezone.utc).timestamp()
    s = max(0, int(now - ts))
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400 * 7, "week"),
                       (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if s >= size:
            k = s // size
            return f"{k} {unit}{'s' if k > 1 else ''} ago"
    return "Less than a second ago"


def esc(text: object) -> str:
    return html.escape(str(text))
