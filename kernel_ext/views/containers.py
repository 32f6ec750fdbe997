"""What happened in a container: ``docker diff`` (CLI lines, a collapsible tree), ``docker history``
(the CLI's table, an HTML table) and an ``exec``'s output."""

from __future__ import annotations

import datetime as _dt

from ..containers import DiffNode, DiffTree, ExecResult, HistoryTable
from ..formatting import ago, esc, human_size, short_id
from ..messages import t
from ..display import Renderers, renderers

__all__ = ["diff_html", "diff_lines", "diff_text", "exec_text", "history_html", "history_text"]

COLOURS = {"A": "#1a7f37", "C": "#9a6700", "D": "#cf222e"}


def diff_lines(tree: DiffTree) -> list[str]:
    """Exactly the CLI's ``docker diff`` lines."""
    return [f"{e.kind} {e.path}" for e in tree.entries]


def diff_text(tree: DiffTree) -> str:
    return "\n".join(diff_lines(tree)) if tree.entries else t("diff.empty", name=tree.container)


def diff_html(tree: DiffTree) -> str:
    c = tree.counts()
    title = t("diff.title", name=esc(tree.container), a=c["A"], c=c["C"], d=c["D"])

    def render(node: DiffNode, depth: int) -> str:
        badge = (f"<span style='color:{COLOURS[node.kind]};font-weight:bold'>{node.kind}</span> "
                 if node.kind else "")
        slash = "/" if node.children and node.name != "/" else ""
        label = f"{badge}<code>{esc(node.name)}{slash}</code>"
        if not node.children:
            return f"<div style='margin-left:1.2em'>{label}</div>"
        kids = "".join(render(ch, depth + 1) for ch in sorted(node.children.values(), key=lambda n: n.name))
        opened = "open" if depth < 3 or len(tree.entries) <= 60 else ""
        return (f"<details {opened} style='margin-left:1.2em'><summary>{label}</summary>"
                f"{kids}</details>")

    body = render(tree.tree(), 0) if tree.entries else esc(t("diff.empty", name=tree.container))
    return (f"<div class='dockerlab-diff'><b>{title}</b> <small>({t('diff.legend')})</small>"
            f"{body}</div>")


def _shown_id(image_id: str) -> str:
    return image_id if image_id == "<missing>" else short_id(image_id)


def history_text(table: HistoryTable, truncate: bool = True) -> str:
    head = ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")
    body = []
    for r in table.rows:
        by = " ".join(r.created_by.split())
        if truncate and len(by) > 45:
            by = by[:44] + "…"
        body.append((_shown_id(r.id), ago(r.created), by, human_size(r.size), r.comment))
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *body])


def history_html(table: HistoryTable) -> str:
    rows = "".join(
        f"<tr><td><code>{esc(_shown_id(r.id))}</code></td>"
        f"<td>{esc(_dt.datetime.fromtimestamp(r.created, _dt.timezone.utc).strftime('%Y-%m-%d %H:%M'))}</td>"
        f"<td><code>{esc(' '.join(r.created_by.split()))}</code></td><td>{human_size(r.size)}</td>"
        f"<td>{esc(r.comment)}</td></tr>" for r in table.rows)
    return ("<table class='dockerlab-history'><thead><tr><th>IMAGE</th><th>CREATED</th><th>CREATED BY</th>"
            f"<th>SIZE</th><th>COMMENT</th></tr></thead><tbody>{rows}</tbody></table>")


def exec_text(result: ExecResult) -> str:
    return result.output.rstrip("\n") + (f"\n(exit code {result.exit_code})" if result.exit_code else "")


@renderers.register
def _diff(tree: DiffTree) -> Renderers:
    return {"text/plain": lambda: diff_text(tree), "text/html": lambda: diff_html(tree),
            "lines": lambda: diff_lines(tree)}


@renderers.register
def _history(table: HistoryTable) -> Renderers:
    return {"text/plain": lambda: history_text(table), "text/html": lambda: history_html(table),
            "text/plain+full": lambda: history_text(table, False)}


@renderers.register
def _exec(result: ExecResult) -> Renderers:
    return {"text/plain": lambda: exec_text(result)}
