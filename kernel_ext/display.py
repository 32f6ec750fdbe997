"""One way to display a result: a model names its view module, the view renders it.

A model (``kernel_ext.containers``, ``images``, ``pull`` …) holds data and never imports a view: it
names its view module in ``__view__``, and this module imports that view on the first display. The view
registers, per model type, its renderers by *form*: MIME types (``text/plain``, ``text/html``) for
IPython, and named forms (``lines``, ``summary``, ``text/plain+full``) for the model's convenience
methods, which ask :func:`render` for them.

IPython asks an object for ``_repr_mimebundle_(include=None, exclude=None)``: ``include`` (if given)
lists the only MIME types wanted, ``exclude`` those not wanted. :class:`Displayable` answers from
the renderers the model's view module registered with :func:`renderers`, calling only the ones
asked for (the HTML of a large table is not built for a text-only export).

>>> bundle({"text/plain": lambda: "x", "text/html": lambda: "<b>x</b>"}, include={"text/plain"})
{'text/plain': 'x'}
>>> bundle({"text/plain": lambda: "x", "text/html": lambda: "<b>x</b>"}, exclude={"text/html"})
{'text/plain': 'x'}
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Container, Mapping
from typing import Any, ClassVar

__all__ = ["Displayable", "Renderers", "bundle", "renderers"]

Renderers = Mapping[str, Callable[[], Any]]  # MIME type -> a function that renders it


def bundle(found: Renderers, include: Container[str] | None = None,
           exclude: Container[str] | None = None) -> dict[str, Any]:
    """Render the MIME types ``include`` asks for (all when ``None``) that ``exclude`` does not."""
    return {mime: render() for mime, render in found.items() if _is_mime(mime)
            and (include is None or mime in include) and (exclude is None or mime not in exclude)}


def _is_mime(form: str) -> bool:
    return "/" in form and "+" not in form


@functools.singledispatch
def renderers(obj: Any) -> Renderers:
    """The renderers of ``obj`` by MIME type; each view module registers its models' renderers."""
    raise TypeError(f"no view is registered for {type(obj).__name__}")


class Displayable:
    """Mixin for models: ``_repr_mimebundle_`` from the view module named in ``__view__``.

    The model holds data only; its view module (``kernel_ext.views.<__view__>``, imported on the
    first display) registers ``renderers`` for it. ``text()`` is the ``text/plain`` rendering.
    """

    __view__: ClassVar[str] = ""  # a module of kernel_ext.views, or a full dotted module path

    def _renderers(self) -> Renderers:
        view = self.__view__
        importlib.import_module(view if "." in view else f"{__package__}.views.{view}")
        return renderers(self)

    def _repr_mimebundle_(self, include: Container[str] | None = None,
                          exclude: Container[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        return bundle(self._renderers(), include, exclude)

    def render(self, form: str) -> Any:
        """The rendering ``form`` of this result (a MIME type or a named form its view offers)."""
        return self._renderers()[form]()

    def text(self) -> str:
        """The text form (what ``print`` and a text-only export show)."""
        return str(self.render("text/plain"))
