"""The learner's progress per chapter: a line per chapter (text) or a small table (HTML).

Each line has its mark and its words (✔ 全部通过 / ◐ 部分 / ○ 还没有), never colour alone.
"""

from __future__ import annotations

from ..display import Renderers, renderers
from ..formatting import esc
from ..messages import t
from ..progress import ChapterProgress, Overview

__all__ = ["progress_html", "progress_text"]


def _state(c: ChapterProgress) -> tuple[str, str]:
    if c.total and len(c.passed) >= c.total:
        return "✔", t("myprogress.all")
    return ("◐", t("myprogress.some")) if c.passed else ("○", t("myprogress.none"))


def progress_text(o: Overview) -> str:
    lines = [t("myprogress.head")]
    for c in o.chapters:
        mark, word = _state(c)
        lines.append(t("myprogress.line", mark=mark, word=word, chapter=c.chapter, done=len(c.passed), total=c.total))
    return "\n".join(lines)


def progress_html(o: Overview) -> str:
    rows = []
    for c in o.chapters:
        mark, word = _state(c)
        rows.append(f"<tr><td>{esc(c.chapter)}</td><td>{mark} {esc(word)}</td>"
                    f"<td>{len(c.passed)}/{c.total}</td></tr>")
    return (f"<table class='dockerlab-progress'><caption>{esc(t('myprogress.head'))}</caption>"
            f"<tr><th>{esc(t('myprogress.col.chapter'))}</th><th>{esc(t('myprogress.col.state'))}</th>"
            f"<th>{esc(t('myprogress.col.done'))}</th></tr>{''.join(rows)}</table>")


@renderers.register
def _(o: Overview) -> Renderers:
    return {"text/plain": lambda: progress_text(o), "text/html": lambda: progress_html(o)}
