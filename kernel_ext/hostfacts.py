"""Sentences about the learner's machine, rendered from what the engine reports, so that they are true
on every host (chapter 1's memory limit: cgroup v1 or v2, a driver or none, rootless or not).

>>> print(memory_limit("1", "none", "9223372036854771712", lang="en"))  # doctest: +ELLIPSIS
This machine: cgroup v1, driver none. The engine cannot manage cgroups here (a rootless engine needs ...
"""

from __future__ import annotations

from .messages import t

__all__ = ["memory_limit"]

MIB64 = 64 * 1024 * 1024


def memory_limit(version: str, driver: str, read: str, want: int = MIB64, lang: str | None = None) -> str:
    """What chapter 1 says after ``docker run -m 64m … cat memory.max``: the engine's cgroup ``version``
    and ``driver`` (``docker info``), and the value ``read`` inside the container."""
    read = (read or "").strip().splitlines()[-1].strip() if (read or "").strip() else "?"
    facts = t("host.cg.facts", lang=lang, version=version or "?", driver=driver or "?")
    if read == str(want):
        said = t("host.cg.applied", lang=lang, read=read)
    elif driver == "none":
        said = t("host.cg.ignored", lang=lang, read=read, want=want)
    else:
        said = t("host.cg.other", lang=lang, read=read, want=want)
    return f"{facts}{said}{t('host.cg.both', lang=lang, want=want)}"
