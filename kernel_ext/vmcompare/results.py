"""The comparison as plain data: what was measured on each side, and the notes about what was not."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from ..messages import t
from ..display import Displayable

__all__ = ["Comparison", "Density", "Note", "Series", "Side"]


@dataclass
class Series:
    """Repeated measurements of one quantity; ``None`` summaries when nothing was measured."""

    values: list[float] = field(default_factory=list)

    def add(self, v: float | None) -> None:
        if v is not None:
            self.values.append(float(v))

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def lo(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def hi(self) -> float | None:
        return max(self.values) if self.values else None

    def __bool__(self) -> bool:
        return bool(self.values)


@dataclass
class Side:
    """One side (``vm`` or ``container``) of the comparison."""

    start_s: Series = field(default_factory=Series)
    mem_mib: Series = field(default_factory=Series)  # VM: qemu PSS; container: cgroup + shim PSS
    mem_parts: dict[str, Series] = field(default_factory=dict)  # the parts, for the curious
    bench_ns: Series = field(default_factory=Series)
    bench_ratio: Series = field(default_factory=Series)  # each run / a native run just before it
    disk_bytes: int | None = None
    kernel: str = ""  # uname -r as seen inside
    markers: list[str] = field(default_factory=list)

    def part(self, name: str) -> Series:
        return self.mem_parts.setdefault(name, Series())


@dataclass
class Density:
    """K instances started at once: how many came up, how long it took, their memory together."""

    want: int = 0
    tried: int = 0
    ready: int = 0
    seconds: float | None = None
    total_mib: float | None = None

    @property
    def per_instance_mib(self) -> float | None:
        return self.total_mib / self.ready if self.total_mib and self.ready else None


@dataclass(frozen=True)
class Note:
    """A message-catalogue key and its arguments, rendered in the language of the moment."""

    key: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str | None = None) -> str:
        return t(self.key, lang=lang, **dict(self.kwargs))


@dataclass
class Comparison(Displayable):
    """Everything :func:`compare` measured. Render with ``display(c)`` or ``print(c)``
    (:mod:`kernel_ext.vmcompare.table` is its view)."""

    __view__ = "kernel_ext.vmcompare.table"

    runs: int = 0
    accel: str = ""  # "kvm" or "tcg"; "" if no VM booted
    machine: str = ""
    vm: Side = field(default_factory=Side)
    container: Side = field(default_factory=Side)
    native_bench_ns: Series = field(default_factory=Series)
    density_vm: Density = field(default_factory=Density)
    density_ct: Density = field(default_factory=Density)
    host_kernel: str = ""
    host_available_mib: float = 0.0
    budget_mib: float = 0.0
    bench_rounds: int = 0
    notes: list[Note] = field(default_factory=list)
    elapsed_s: float = 0.0
    lang: str | None = None
    finished: bool = False
    session: str = ""  # the label value on every container this comparison created

    def note(self, key: str, **kwargs: Any) -> None:
        n = Note(key, tuple(sorted(kwargs.items())))
        if n not in self.notes:
            self.notes.append(n)

    def ratio(self, side: Side) -> float | None:
        """Benchmark time on ``side`` over native time (1.0 = native speed): the median of pairs
        measured back to back, so a host that gets busier half-way does not skew it."""
        if side.bench_ratio:
            return side.bench_ratio.median
        native, there = self.native_bench_ns.median, side.bench_ns.median
        return there / native if native and there else None

    def start_ratio(self) -> float | None:
        v, c = self.vm.start_s.median, self.container.start_s.median
        return v / c if v and c else None

    def fit(self, side: Side, density: Density) -> int | None:
        """How many instances of ``side`` the host's available memory would hold (extrapolated)."""
        each = density.per_instance_mib or side.mem_mib.median
        return int(self.host_available_mib // each) if each and self.host_available_mib else None

    def __str__(self) -> str:
        return self.text()

    def chart(self) -> Any:
        """Start-up, memory and CPU as one chart (PNG in a notebook; ``.figure`` is the Figure)."""
        from .charts import ChartView, chart_caption, comparison_figure

        return ChartView(comparison_figure(self), chart_caption(self))
