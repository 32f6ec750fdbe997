"""``docker image rm`` with the reasons: what was untagged, deleted, and why anything stayed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .formatting import esc, short_id
from .messages import register, t

__all__ = ["Kept", "RemovalReport", "chain_ids"]

register({
    "rm.kept.tag": {"zh": "镜像 {image} 保留：标签 {tags} 仍指向它", "en": "image {image} stays: tag {tags} still points at it"},
    "rm.kept.layer": {"zh": "层 {layer} 保留：镜像 {by} 也在使用它", "en": "layer {layer} stays: image {by} shares it"},
    "rm.kept.container": {"zh": "{ref} 未删除：容器 {container} 正在使用它（先删除容器，或用 force=True）",
                          "en": "{ref} not removed: container {container} uses it (remove the container first, or force=True)"},
    "rm.kept.child": {"zh": "{ref} 未删除：其他镜像以它为父镜像", "en": "{ref} not removed: other images are built on it"},
    "rm.error": {"zh": "{ref}：{why}", "en": "{ref}: {why}"},
    "rm.none": {"zh": "没有删除任何东西。", "en": "Nothing was removed."},
})


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Layer chain ids (how the engine names a layer together with everything below it)."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class Kept:
    what: str  # image id, layer chain id or the reference asked for
    why: str  # learner-facing reason


@dataclass
class RemovalReport:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.untagged or self.deleted)

    def lines(self) -> list[str]:
        out = [f"Untagged: {u}" for u in self.untagged] + [f"Deleted: {d}" for d in self.deleted]
        out += [f"Kept: {k.why}" for k in self.kept] + [f"Error: {e}" for e in self.errors]
        return out or [t("rm.none")]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        items = "".join(
            f"<li style='color:{c}'>{esc(line)}</li>"
            for line, c in ((ln, "#cf222e" if ln.startswith("Error") else "#9a6700" if ln.startswith("Kept")
                             else "inherit") for ln in self.lines()))
        return {"text/plain": "\n".join(self.lines()), "text/html": f"<ul class='dockerlab-rm'>{items}</ul>"}

    @staticmethod
    def layer_reasons(removed_chain: list[str], remaining: dict[str, list[str]]) -> list[Kept]:
        """For each chain id of a deleted image that other images still use: which image."""
        kept = []
        for cid in removed_chain:
            users = sorted(ref for ref, chain in remaining.items() if cid in chain)
            if users:
                kept.append(Kept(cid, t("rm.kept.layer", layer=short_id(cid), by=", ".join(users[:3]))))
        return kept
