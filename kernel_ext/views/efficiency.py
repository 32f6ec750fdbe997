"""An image's efficiency as dive reports it: the score, the bytes wasted, the worst files."""

from __future__ import annotations

from ..image_efficiency import Efficiency
from ..formatting import esc, human_size
from ..messages import t
from ..display import Renderers, renderers

__all__ = ["efficiency_text"]


def efficiency_text(eff: Efficiency) -> str:
    head = t("eff.summary", ref=eff.ref, score=eff.score, wasted=human_size(eff.wasted_bytes),
             n=len(eff.inefficient))
    rows = [f"  {n}×  {human_size(b):>8}  {p}" for p, n, b in eff.inefficient[:10]]
    return "\n".join([head, *rows])


@renderers.register
def _(eff: Efficiency) -> Renderers:
    return {"text/plain": lambda: efficiency_text(eff), "text/html": lambda: f"<pre>{esc(efficiency_text(eff))}</pre>"}
