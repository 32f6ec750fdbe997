"""``docker image ls`` as the CLI prints it (text) and as a table (HTML, Docker 29's columns)."""

from __future__ import annotations

from ..formatting import ago, esc, human_size, short_id
from ..images import ImageRow, ImageTable
from ..display import Renderers, renderers

__all__ = ["image_table_html", "image_table_text"]

DIM = ' style="color:#999"'


def image_table_text(table: ImageTable) -> str:
    head = ["REPOSITORY", "TAG", *(["DIGEST"] if table.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    body = [[r.repository, r.tag, *([r.digest] if table.digests else []), short_id(r.id),
             ago(r.created), human_size(r.size)] for r in table.rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in [head, *body])


def image_table_html(table: ImageTable) -> str:
    """Docker 29's columns (DISK USAGE, CONTENT SIZE) under the containerd store, else SIZE."""
    known = all(r.shared_size >= 0 for r in table.rows)
    content = table.content_known
    sizes = ("DISK USAGE", "CONTENT SIZE") if content else ("SIZE",)
    cols = ("REPOSITORY", "TAG", "IMAGE ID", "DIGEST", "CREATED", *sizes,
            *(("SHARED", "UNIQUE") if known else ()))
    head = "".join(f"<th>{h}</th>" for h in cols)

    def extra(r: ImageRow) -> str:
        return f"<td>{human_size(r.shared_size)}</td><td>{human_size(r.unique_size)}</td>" if known else ""

    body = "".join(
        f"<tr{DIM if r.dangling else ''}><td>{esc(r.repository)}</td><td>{esc(r.tag)}</td>"
        f"<td><code>{short_id(r.id)}</code></td><td><code>{esc(r.digest[:19])}</code></td>"
        f"<td>{ago(r.created)}</td><td>{human_size(r.size)}</td>"
        f"{f'<td>{human_size(r.content_size)}</td>' if content else ''}{extra(r)}</tr>" for r in table.rows)
    return f"<table class='dockerlab-images'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@renderers.register
def _(table: ImageTable) -> Renderers:
    return {"text/plain": lambda: image_table_text(table), "text/html": lambda: image_table_html(table)}
