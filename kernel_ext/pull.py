"""Pulling an image from the engine's JSON progress stream, as a plain model a view can render.

Per layer (id: the first 12 hex digits of the compressed layer's digest) the engine sends
``Pulling fs layer`` -> ``Downloading`` (progressDetail current/total bytes) -> ``Download complete``
-> ``Extracting`` -> ``Pull complete``; then ``Digest: sha256:...`` and ``Status: ...``.
The two image stores differ:

- graph drivers (Docker <= 28 default): ``Verifying Checksum`` before ``Download complete``,
  ``Extracting`` counts bytes, and a layer the engine has is announced as ``Already exists``;
- the containerd image store (Docker 29 default): small layers skip ``Downloading`` (no size),
  ``Extracting`` counts seconds (``"units": "s"``), and layers the engine has are not mentioned
  at all. :meth:`PullProgress.add_manifest` fills in sizes and present layers from the manifest.

Listeners are called at most every ``interval`` seconds (and once at the end), so a slow view never
slows the pull. Once ``done`` is set (also when the pull failed), a live view can close: whoever
wanted the result shows it, so a notebook shows the pull's log once and keeps no widget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .display import Displayable

__all__ = ["LayerProgress", "LayerPull", "PullProgress", "PullResult", "follow_pull_stream"]


@dataclass
class LayerProgress:
    id: str
    status: str = "Waiting"
    downloaded: int = 0
    extracted: int = 0
    total: int = 0  # compressed bytes (0: not known yet)
    already_present: bool = False
    extract_seconds: int = 0  # the containerd store reports extraction in seconds, not bytes

    @property
    def phase(self) -> str:
        """"download", "extract" or "done"."""
        if self.already_present or self.status == "Pull complete":
            return "done"
        if self.status in ("Extracting", "Download complete", "Verifying Checksum"):
            return "extract"
        return "download"

    @property
    def fraction(self) -> float:
        """0..1 over download then extract (each counts half)."""
        if self.phase == "done":
            return 1.0
        if self.phase == "extract":  # downloaded; bytes extracted only when the engine counts them
            return 0.5 + (0.5 * min(self.extracted, self.total) / self.total if self.total else 0.0)
        if not self.total:
            return 0.0
        return 0.5 * min(self.downloaded, self.total) / self.total


@dataclass
class PullProgress:
    ref: str
    layers: dict[str, LayerProgress] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    digest: str = ""
    status: str = ""
    done: bool = False
    error: str = ""

    def apply(self, event: dict[str, Any]) -> None:
        if "error" in event:
            self.error = str(event.get("error"))
            return
        status = str(event.get("status", ""))
        lid = event.get("id")
        if status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip()
            self.log.append(status)
        elif status.startswith("Status: "):
            self.status = status.removeprefix("Status: ").strip()
            self.log.append(status)
        elif lid and status.startswith("Pulling from"):
            self.log.append(f"{lid}: {status}")
        elif lid and len(lid) == 12:
            layer = self.layers.setdefault(lid, LayerProgress(lid))
            layer.status = status
            detail = event.get("progressDetail") or {}
            if status == "Downloading":
                layer.downloaded = int(detail.get("current", 0))
                layer.total = int(detail.get("total", layer.total) or layer.total)
            elif status == "Extracting" and detail.get("units") == "s":
                layer.extract_seconds = int(detail.get("current", 0))
            elif status == "Extracting":
                layer.extracted = int(detail.get("current", 0))
                layer.total = int(detail.get("total", layer.total) or layer.total)
            elif status == "Already exists":
                layer.already_present = True
            if status in ("Pull complete", "Already exists", "Pulling fs layer", "Download complete"):
                self.log.append(f"{lid}: {status}")
        elif status:
            self.log.append(status)

    def add_manifest(self, layers: list[tuple[str, int]]) -> None:
        """Order layers as the image's manifest lists them (``(digest, compressed size)``, bottom
        first), take their sizes from it, and add the layers the stream did not mention (the
        containerd store says nothing about layers it already has)."""
        ordered: dict[str, LayerProgress] = {}
        for digest, size in layers:
            sid = digest.removeprefix("sha256:")[:12]
            layer = self.layers.get(sid) or LayerProgress(sid, "Already exists", already_present=True)
            layer.total = int(size)
            ordered[sid] = layer
        self.layers = {**ordered, **{k: v for k, v in self.layers.items() if k not in ordered}}


@dataclass(frozen=True)
class LayerPull:
    id: str  # the 12-hex id the CLI shows (short digest of the compressed layer)
    size: int  # compressed size as downloaded (0 when it was already present)
    already_present: bool


@dataclass(frozen=True)
class PullResult(Displayable):
    """What a pull brought (:mod:`~kernel_ext.views.pull` renders it)."""

    __view__ = "pull"

    ref: str
    image_id: str
    digest: str
    status: str
    layers: tuple[LayerPull, ...]
    log: tuple[str, ...]

    @property
    def downloaded_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)

    def summary(self) -> str:
        """One sentence: how many layers, how many downloaded, how much."""
        return str(self.render("summary"))


Listener = Callable[[PullProgress], None]


def follow_pull_stream(events: Iterable[dict[str, Any]], progress: PullProgress,
                       listener: Listener | None = None, interval: float = 0.1) -> PullProgress:
    """Apply every stream event to ``progress``; call ``listener`` throttled, and once at the end."""
    last = 0.0
    for event in events:
        progress.apply(event)
        if progress.error:
            break
        if listener is not None:
            now = time.monotonic()
            if now - last >= interval:
                last = now
                listener(progress)
    progress.done = True
    if listener is not None:
        listener(progress)
    return progress
