"""What happened inside a container: ``docker diff`` as a tree, ``docker history``, ``exec`` output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .display import Displayable

__all__ = ["DiffEntry", "DiffNode", "DiffTree", "ExecResult", "HistoryRow", "HistoryTable", "diff_tree",
           "history_table"]

KINDS = {0: "C", 1: "A", 2: "D"}


@dataclass(frozen=True)
class DiffEntry:
    kind: str  # "A", "C" or "D"
    path: str


@dataclass
class DiffNode:
    """A directory or file in :meth:`DiffTree.tree`; ``kind`` is set where the path itself changed."""

    name: str
    kind: str = ""
    children: dict[str, DiffNode] = field(default_factory=dict)


@dataclass(frozen=True)
class DiffTree(Displayable):
    """``docker diff``: the changes in a container's writable layer (:mod:`~kernel_ext.views.containers`)."""

    __view__ = "containers"
    container: str
    entries: tuple[DiffEntry, ...]

    def counts(self) -> dict[str, int]:
        return {k: sum(e.kind == k for e in self.entries) for k in "ACD"}

    def kind_of(self, path: str) -> str | None:
        return next((e.kind for e in self.entries if e.path == path), None)

    def lines(self) -> list[str]:
        """Exactly the CLI's ``docker diff`` lines."""
        return list(self.render("lines"))

    def html(self) -> str:
        """The changes as a collapsible tree, as JupyterLab shows them."""
        return str(self._renderers()["text/html"]())

    def tree(self) -> DiffNode:
        """The changed paths as a tree of directories (the view draws it)."""
        root = DiffNode("/")
        for e in self.entries:
            node = root
            for part in [p for p in e.path.split("/") if p]:
                node = node.children.setdefault(part, DiffNode(part))
            node.kind = e.kind
        return root


def diff_tree(container: str, changes: list[dict[str, Any]] | None) -> DiffTree:
    entries = tuple(DiffEntry(KINDS[int(c["Kind"])], c["Path"]) for c in (changes or []))
    return DiffTree(container, tuple(sorted(entries, key=lambda e: e.path)))


@dataclass(frozen=True)
class HistoryRow:
    id: str  # "<missing>" for steps that are not images on this engine
    created: float
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class HistoryTable(Displayable):
    """``docker history``: the steps that made an image, newest first."""

    __view__ = "containers"
    ref: str
    rows: tuple[HistoryRow, ...]

    def text(self, truncate: bool = True) -> str:
        """The CLI's table; ``truncate=False`` is ``--no-trunc``."""
        return str(self.render("text/plain" if truncate else "text/plain+full"))

    def html(self) -> str:
        """The steps as an HTML table, with full commands and UTC times."""
        return str(self._renderers()["text/html"]())


def history_table(ref: str, history: list[dict[str, Any]]) -> HistoryTable:
    rows = tuple(HistoryRow(id=h.get("Id", "<missing>"), created=float(h.get("Created", 0)),
                            created_by=h.get("CreatedBy", ""), size=int(h.get("Size", 0)),
                            comment=h.get("Comment", ""), tags=tuple(h.get("Tags") or ()))
                 for h in history)
    return HistoryTable(ref, rows)


@dataclass(frozen=True)
class ExecResult(Displayable):
    """An ``exec``'s exit code and its output (stdout and stderr together)."""

    __view__ = "containers"
    exit_code: int
    output: str

    def __bool__(self) -> bool:
        return self.exit_code == 0
