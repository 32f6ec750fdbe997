"""Live views of a running comparison: ipywidgets in JupyterLab (Python only), plain lines elsewhere.

>>> view = LiveProgress()                     # doctest: +SKIP
>>> display(view); c = compare(lab, progress=view)   # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..messages import t
from .measure import Progress
from .table import render_html, render_text

__all__ = ["LiveProgress", "TextProgress"]


class TextProgress:
    """Prints one line per step: ``[3/13] 4.2 s  Booting VM 1/3``."""

    def __init__(self, stream: TextIO | None = None, lang: str | None = None) -> None:
        self.stream, self.lang = stream or sys.stdout, lang
        self.lines: list[str] = []

    def __call__(self, p: Progress) -> None:
        line = f"[{p.step}/{p.total}] {p.snapshot.elapsed_s:5.1f} s  {p.text(self.lang)}"
        self.lines.append(line)
        print(line, file=self.stream, flush=True)


class LiveProgress:
    """A progress bar, the current step and the table filling in as figures arrive.

    Built from existing widgets (no custom JavaScript). Without ipywidgets it degrades to
    :class:`TextProgress`. ``auto_display`` shows it on the first step if nobody displayed it yet.
    """

    def __init__(self, lang: str | None = None, auto_display: bool = True) -> None:
        self.lang, self.auto_display = lang, auto_display
        self.last: Progress | None = None
        self._shown = False
        self._handle: Any = None  # the live display this view made itself (auto_display)
        self.box: Any = None
        try:
            import ipywidgets as w
        except ImportError:
            self._text: TextProgress | None = TextProgress(lang=lang)
            return
        self._text = None
        self.title = w.HTML(f"<b>{t('vm.p.title', lang=lang)}</b>")
        self.bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="60%"))
        self.step = w.Label(value="")
        self.table = w.HTML(value="")
        self.box = w.VBox(children=(self.title, w.HBox(children=(self.bar, self.step)), self.table))

    def __call__(self, p: Progress) -> None:
        self.last = p
        if self._text is not None:
            self._text(p)
            return
        if self.box is None:  # closed: the comparison is over
            return
        if self.auto_display and not self._shown:
            self._display()
        self.bar.max = p.total
        self.bar.value = p.step
        self.bar.bar_style = "success" if p.snapshot.finished else ""
        self.step.value = f"{p.text(self.lang)} · {p.snapshot.elapsed_s:.1f} s"
        self.table.value = render_html(p.snapshot)
        if p.snapshot.finished and self._handle is not None:
            self.close()

    def close(self) -> None:
        """Give the live view's place up (the comparison's result shows the table): its output becomes
        an empty text and the widgets close, so a saved notebook keeps no widget that shows
        "disconnected" until the kernel runs again."""
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None
        if self.box is not None:
            for widget in (self.title, self.bar, self.step, self.table, *self.box.children, self.box):
                widget.close()
            self.box = None

    def _display(self) -> None:
        self._shown = True
        try:
            from IPython.display import display
        except ImportError:
            return
        self._handle = display(self, display_id=True)  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        self._shown = True
        if self.box is None:
            text = render_text(self.last.snapshot) if self.last else t("vm.p.title", lang=self.lang)
            return {"text/plain": text}
        bundle = self.box._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(bundle, dict):  # a stable line, not the widget tree's repr (nbval compares it)
            bundle["text/plain"] = f"<{t('vm.p.title', lang=self.lang)}>"
        return bundle
