"""The pull's live view (one progress bar per layer, then a CLI-like log) and its static HTML.

The live view lasts as long as the pull: then it closes and leaves an empty output, and the result
(``%docker pull`` displays it; ``lab.pull`` returns it) shows the log once, as static HTML that a
saved notebook renders without a kernel."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ..formatting import esc, human_size
from ..messages import t
from ..pull import PullResult
from ..display import Renderers, renderers

if TYPE_CHECKING:
    from ..pull import PullProgress

__all__ = ["PullView", "live_pull_view", "pull_result_html", "pull_summary"]


def pull_summary(result: PullResult) -> str:
    if all(layer.already_present for layer in result.layers):
        # "Image is up to date", or a new image whose layers the engine already held (another image
        # shares them): nothing was downloaded either way, but only the first is "up to date".
        key = "pull.uptodate" if "up to date" in result.status else "pull.layers_present"
        return t(key, ref=result.ref, status=result.status)
    new = sum(not layer.already_present for layer in result.layers)
    return t("pull.done", ref=result.ref, n=len(result.layers), new=new, old=len(result.layers) - new,
             size=human_size(result.downloaded_bytes))


def pull_result_html(result: PullResult) -> str:
    head = esc(pull_summary(result))
    rows = "".join(
        f"<tr><td><code>{x.id}</code></td>"
        f"<td>{t('pull.present') if x.already_present else human_size(x.size)}</td></tr>"
        for x in result.layers)
    log = esc("\n".join(result.log))
    return (f"<div class='dockerlab-pull'><b>{head}</b><table>{rows}</table>"
            f"<pre style='font-size:90%'>{log}</pre></div>")


@renderers.register
def _(result: PullResult) -> Renderers:
    return {"text/plain": lambda: "\n".join(result.log), "text/html": lambda: pull_result_html(result),
            "summary": lambda: pull_summary(result)}


def _bar_label(layer: Any) -> str:
    if layer.already_present:
        return f"{layer.id}  {t('pull.present')}"
    size = f" {human_size(layer.total)}" if layer.total else ""
    secs = f" {layer.extract_seconds} s" if layer.status == "Extracting" and layer.extract_seconds else ""
    return f"{layer.id}  {layer.status}{size}{secs}"


class PullView:
    """A VBox of per-layer progress bars and a log; ``update(progress)`` is the pull's listener."""

    def __init__(self, ref: str) -> None:
        import ipywidgets as w

        self._w = w
        self.ref = ref
        self.title = w.HTML(f"<b>{esc(t('pull.title', ref=ref))}</b>")
        self.bars: dict[str, Any] = {}
        self.bar_box = w.VBox([])
        self.log = w.HTML("")
        self.box = _QuietVBox([self.title, self.bar_box, self.log], ref=ref)
        self.handle: Any = None  # the display to replace when the pull is over (live_pull_view's)

    def update(self, progress: PullProgress) -> None:
        w = self._w
        if self.box.done:  # closed: later calls (the manifest's sizes) have nothing to show
            return
        added = False
        for lid, layer in progress.layers.items():
            bar = self.bars.get(lid)
            if bar is None:
                bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="",
                                      layout=w.Layout(width="50%"))
                label = w.Label("")
                self.bars[lid] = (bar, label)
                added = True
            bar, label = self.bars[lid]
            bar.value = layer.fraction
            bar.bar_style = "success" if layer.phase == "done" else ("info" if layer.phase == "extract" else "")
            label.value = _bar_label(layer)
        if added:
            self.bar_box.children = tuple(w.HBox([b, lab]) for b, lab in self.bars.values())
        self.log.value = f"<pre style='font-size:90%;margin:0'>{esc(chr(10).join(progress.log[-12:]))}</pre>"
        if progress.done:
            self.title.value = f"<b>{esc(progress.status or progress.ref)}</b>"
            self.box.done = True
            self.box.layers = len(progress.layers)
            self.close()

    def close(self) -> None:
        """Give the live view's place up once the pull is over: its output becomes an empty text
        (the result, displayed by whoever pulled, carries the log), and the widgets close, so a
        saved notebook keeps no widget that shows "disconnected" until the kernel runs again."""
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
            self.handle = None
            self.box.close_all_children()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


@functools.cache
def _quiet_vbox_class() -> Any:
    import ipywidgets as w

    class QuietVBox(w.VBox):  # type: ignore[misc]
        """A VBox whose text/plain is a stable sentence (nbval compares it), not the widget tree."""

        def __init__(self, children: list[Any], ref: str) -> None:
            super().__init__(children)
            self.ref = ref
            self.done = False
            self.layers = 0

        def __repr__(self) -> str:
            return f"<{t('pull.title', ref=self.ref)}>"

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            # Its text is empty, as is the output it leaves once closed (PullView.close): a notebook
            # test that compares a fresh run with the saved one sees the same text either way.
            bundle = super()._repr_mimebundle_(**kwargs)
            if bundle:
                bundle["text/plain"] = ""
            return bundle

        def close_all_children(self) -> None:
            for box in self.children[1].children:
                for child in box.children:
                    child.close()
                box.close()
            for child in self.children:
                child.close()
            self.close()

    return QuietVBox


def _QuietVBox(children: list[Any], ref: str) -> Any:
    return _quiet_vbox_class()(children, ref)


def live_pull_view(ref: str) -> Any:
    """Listener factory used by ``Lab.pull`` in a notebook: displays the view, returns its updater."""
    from IPython.display import display

    view = PullView(ref)
    view.handle = display(view.box, display_id=True)
    return view.update
