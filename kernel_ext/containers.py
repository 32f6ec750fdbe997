"""What happened inside a container: ``docker diff`` as a tree, ``docker history``, ``exec`` output."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from .formatting import ago, esc, human_size, short_id
from .messages import register, t

__all__ = ["DiffEntry", "DiffTree", "ExecResult", "HistoryRow", "HistoryTable", "diff_tree", "history_table"]

register({
    "diff.title": {"zh": "容器 {name} 的存储层变化：新增 {a}，修改 {c}，删除 {d}",
                   "en": "Changes in container {name}'s layer: {a} added, {c} changed, {d} deleted"},
    "diff.empty": {"zh": "容器 {name} 没有改动任何文件。", "en": "Container {name} changed no files."},
    "diff.legend": {"zh": "A 新增 · C 修改 · D 删除", "en": "A added · C changed · D deleted"},
})

KINDS = {0: "C", 1: "A", 2: "D"}
COLOURS = {"A": "#1a7f37", "C": "#9a6700", "D": "#cf222e"}


@dataclass(frozen=True)
class DiffEntry:
    kind: str  # "A", "C" or "D"
    path: str


@dataclass
class _Node:
    name: str
    kind: str = ""
    children: dict[str, _Node] = field(default_factory=dict)


@dataclass(frozen=True)
class DiffTree:
    container: str
    entries: tuple[DiffEntry, ...]

    def counts(self) -> dict[str, int]:
        return {k: sum(e.kind == k for e in self.entries) for k in "ACD"}

    def kind_of(self, path: str) -> str | None:
        return next((e.kind for e in self.entries if e.path == path), None)

    def lines(self) -> list[str]:
        """Exactly the CLI's ``docker diff`` lines."""
        return [f"{e.kind} {e.path}" for e in self.entries]

    def text(self) -> str:
        return "\n".join(self.lines()) if self.entries else t("diff.empty", name=self.container)

    def _tree(self) -> _Node:
        root = _Node("/")
        for e in self.entries:
            node = root
            for part in [p for p in e.path.split("/") if p]:
                node = node.children.setdefault(part, _Node(part))
            node.kind = e.kind
        return root

    def html(self) -> str:
        c = self.counts()
        title = t("diff.title", name=esc(self.container), a=c["A"], c=c["C"], d=c["D"])

        def render(node: _Node, depth: int) -> str:
            badge = (f"<span style='color:{COLOURS[node.kind]};font-weight:bold'>{node.kind}</span> "
                     if node.kind else "")
            slash = "/" if node.children and node.name != "/" else ""
            label = f"{badge}<code>{esc(node.name)}{slash}</code>"
            if not node.children:
                return f"<div style='margin-left:1.2em'>{label}</div>"
            kids = "".join(render(ch, depth + 1) for ch in sorted(node.children.values(), key=lambda n: n.name))
            opened = "open" if depth < 3 or len(self.entries) <= 60 else ""
            return (f"<details {opened} style='margin-left:1.2em'><summary>{label}</summary>"
                    f"{kids}</details>")

        body = render(self._tree(), 0) if self.entries else esc(t("diff.empty", name=self.container))
        return (f"<div class='dockerlab-diff'><b>{title}</b> <small>({t('diff.legend')})</small>"
                f"{body}</div>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}


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
class HistoryTable:
    ref: str
    rows: tuple[HistoryRow, ...]

    def text(self, truncate: bool = True) -> str:
        head = ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")
        body = []
        for r in self.rows:
            by = " ".join(r.created_by.split())
            if truncate and len(by) > 45:
                by = by[:44] + "…"
            body.append((r.id if r.id == "<missing>" else short_id(r.id), ago(r.created), by,
                         human_size(r.size), r.comment))
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        return "\n".join("   ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *body])

    def html(self) -> str:
        rows = "".join(
            f"<tr><td><code>{esc(r.id if r.id == '<missing>' else short_id(r.id))}</code></td>"
            f"<td>{esc(_dt.datetime.fromtimestamp(r.created, _dt.timezone.utc).strftime('%Y-%m-%d %H:%M'))}</td>"
            f"<td><code>{esc(' '.join(r.created_by.split()))}</code></td><td>{human_size(r.size)}</td>"
            f"<td>{esc(r.comment)}</td></tr>" for r in self.rows)
        return ("<table class='dockerlab-history'><thead><tr><th>IMAGE</th><th>CREATED</th><th>CREATED BY</th>"
                f"<th>SIZE</th><th>COMMENT</th></tr></thead><tbody>{rows}</tbody></table>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}


def history_table(ref: str, history: list[dict[str, Any]]) -> HistoryTable:
    rows = tuple(HistoryRow(id=h.get("Id", "<missing>"), created=float(h.get("Created", 0)),
                            created_by=h.get("CreatedBy", ""), size=int(h.get("Size", 0)),
                            comment=h.get("Comment", ""), tags=tuple(h.get("Tags") or ()))
                 for h in history)
    return HistoryTable(ref, rows)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str

    def __bool__(self) -> bool:
        return self.exit_code == 0

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        text = self.output.rstrip("\n") + (f"\n(exit code {self.exit_code})" if self.exit_code else "")
        return {"text/plain": text}
