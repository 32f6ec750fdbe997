"""Container vs virtual machine, measured live on this host (book table 2.7, shown rather than told).

>>> from kernel_ext.vmcompare import compare, build_assets      # doctest: +SKIP
>>> build_assets("/work/main/.lab/vm")                          # doctest: +SKIP
<VMAssets kernel='6.1.0-56-cloud-amd64' disk=14.5 MiB>
>>> c = compare(lab, runs=3, density=4)                          # doctest: +SKIP
>>> c.chart()                                                    # doctest: +SKIP

Nothing starts at import time. Views (``LiveProgress``, ``comparison_figure``) import ipywidgets or
matplotlib only when they are used.
"""

from __future__ import annotations

from typing import Any

from .assets import VMAssets, build_assets, compile_bench
from .measure import Progress, compare, default_cache_dir, default_progress
from .results import Comparison, Density, Note, Series, Side

__all__ = ["Comparison", "Density", "LiveProgress", "Note", "Progress", "Series", "Side",
    "TextProgress", "VMAssets", "build_assets", "compare", "comparison_figure", "compile_bench",
    "default_cache_dir", "default_progress"]


def __getattr__(name: str) -> Any:  # the views import ipywidgets / matplotlib only when asked for
    if name in ("LiveProgress", "TextProgress"):
        from . import progress

        return getattr(progress, name)
    if name == "comparison_figure":
        from .charts import comparison_figure

        return comparison_figure
    raise AttributeError(name)
