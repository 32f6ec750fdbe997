"""``docker image rm`` with the reasons: what was untagged, deleted, and why anything stayed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .formatting import short_id
from .messages import t
from .display import Displayable

__all__ = ["CleanupReport", "Kept", "RemovalReport", "chain_ids"]

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
class RemovalReport(Displayable):
    """What ``Lab.remove`` did (:mod:`~kernel_ext.views.removal` renders it)."""

    __view__ = "removal"

    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.untagged or self.deleted)

    def lines(self) -> list[str]:
        """One line per name untagged, image deleted, thing kept (and why), error."""
        return list(self.render("lines"))

    @staticmethod
    def layer_reasons(removed_chain: list[str], remaining: dict[str, list[str]]) -> list[Kept]:
        """For each chain id of a deleted image that other images still use: which image."""
        kept = []
        for cid in removed_chain:
            users = sorted(ref for ref, chain in remaining.items() if cid in chain)
            if users:
                kept.append(Kept(cid, t("rm.kept.layer", layer=short_id(cid), by=", ".join(users[:3]))))
        return kept


@dataclass
class CleanupReport(Displayable):
    """What ``Lab.cleanup`` or ``reset`` removed, by kind (:mod:`~kernel_ext.views.removal`)."""

    __view__ = "removal"

    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
