"""The single exception root of kernel_ext: every failure a learner can cause is a LabError.

A LabError carries one message key and its arguments; ``str(err)`` is the sentence in the course
language, ``err.bilingual()`` gives both. In a notebook the extension shows only that sentence.
"""

from __future__ import annotations

from typing import Any

from .messages import t

__all__ = [
    "BadReference",
    "Conflict",
    "ContainerNotFound",
    "EngineUnavailable",
    "ImageNotFound",
    "LabError",
    "PortInUse",
    "RegistryUnavailable",
    "ToolMissing",
    "VMError",
]


class LabError(Exception):
    """Root of every error kernel_ext raises on purpose."""

    def __init__(self, key: str, **kwargs: Any) -> None:
        self.key = key
        self.kwargs = kwargs
        super().__init__(t(key, **kwargs))

    def __str__(self) -> str:  # re-render, so a language switch shows at once
        return t(self.key, **self.kwargs)

    def bilingual(self) -> str:
        return f"{t(self.key, lang='zh', **self.kwargs)} / {t(self.key, lang='en', **self.kwargs)}"


class EngineUnavailable(LabError):
    pass


class ImageNotFound(LabError):
    pass


class ContainerNotFound(LabError):
    pass


class BadReference(LabError):
    pass


class Conflict(LabError):
    pass


class PortInUse(LabError):
    pass


class RegistryUnavailable(LabError):
    pass


class ToolMissing(LabError):
    pass


class VMError(LabError):
    pass
