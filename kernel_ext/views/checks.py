"""A check's verdict: ✔ or ✘ and the reason, green or red."""

from __future__ import annotations

from ..check import CheckResult
from ..formatting import esc
from ..display import Renderers, renderers

__all__ = ["check_html", "check_text"]


def check_text(result: CheckResult) -> str:
    return f"{'✔' if result.ok else '✘'} {result.reason}"


def check_html(result: CheckResult) -> str:
    colour = "#1a7f37" if result.ok else "#cf222e"
    return f"<div style='color:{colour};font-weight:bold'>{esc(check_text(result))}</div>"


@renderers.register
def _(result: CheckResult) -> Renderers:
    return {"text/plain": lambda: check_text(result), "text/html": lambda: check_html(result)}
