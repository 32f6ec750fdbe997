"""Docker Lab's kernel extension: a plain-Python API over the lab's Docker Engine, views, magics.

>>> from kernel_ext import connect            # doctest: +SKIP
>>> lab = connect(); lab.pull("busybox")      # doctest: +SKIP

In a notebook: ``%load_ext kernel_ext``, then ``%docker image ls``, ``%layers``, ``%diff web``.
Nothing happens at import time; the IPython parts load only in :func:`load_ipython_extension`.
"""

from __future__ import annotations

from typing import Any

from .containers import DiffTree, ExecResult, HistoryTable
from .errors import (
    BadReference,
    Conflict,
    ContainerNotFound,
    EngineUnavailable,
    ImageNotFound,
    LabError,
    PortInUse,
    RegistryUnavailable,
    ToolMissing,
)
from .images import DiskUsage, ImageRow, ImageTable
from .lab import CleanupReport, Lab, connect
from .pull import LayerPull, PullProgress, PullResult
from .removal import RemovalReport

__all__ = [
    "BadReference",
    "CleanupReport",
    "Conflict",
    "ContainerNotFound",
    "DiffTree",
    "DiskUsage",
    "EngineUnavailable",
    "ExecResult",
    "HistoryTable",
    "ImageNotFound",
    "ImageRow",
    "ImageTable",
    "Lab",
    "LabError",
    "LayerPull",
    "PortInUse",
    "PullProgress",
    "PullResult",
    "RegistryUnavailable",
    "RemovalReport",
    "ToolMissing",
    "check",
    "connect",
    "efficiency",
    "layer_graph",
    "load_ipython_extension",
    "unload_ipython_extension",
    "vmcompare",
]


def __getattr__(name: str) -> Any:  # graph and check import graphviz lazily
    import importlib

    if name in ("layer_graph", "efficiency"):
        return getattr(importlib.import_module(".views.graph" if name == "layer_graph" else ".image_efficiency",
                                               __name__), name)
    if name in ("check", "registry", "graph", "vmcompare", "views"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)


def load_ipython_extension(ipython: Any) -> None:
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload

    unload(ipython)
