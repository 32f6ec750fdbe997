"""Progress that survives: which exercises the learner has passed at least once, and per chapter.

What the engine shows still decides each check (a check that fails now shows ✘); this file only
remembers that an exercise was passed once, so a kernel restart or a re-run of the chapter (which
resets its objects and its clock) does not make the learner's work look lost. It lives in the
learner's lab home, ``$LAB_HOME/progress.json``, readable by the learner only (0600):

    {"06": {"1": "2026-12-07T12:40:00+00:00", "3": "..."}}

The exercises of each chapter are the ones with hints in the message catalogue (``hint.chNN.exK.1``;
``tests/test_hints.py`` holds every exercise to having one), so the index can show ``2/3`` without
reading the chapters.

>>> import tempfile, pathlib
>>> p = Progress(pathlib.Path(tempfile.mkdtemp()) / "progress.json")
>>> p.passed("06", 1); p.passed("06", 1); p.passed("06", 3)
>>> p.chapter("06"), sorted(p.load())
([1, 3], ['06'])
>>> oct(p.path.stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .display import Displayable
from .messages import keys

__all__ = ["ChapterProgress", "Overview", "Progress", "default", "exercise_counts", "overview"]

FILE = "progress.json"
_HINT = re.compile(r"^hint\.ch(\d\d)\.ex(\d+)\.1$")


def exercise_counts() -> dict[str, int]:
    """{"01": 3, ...}: each chapter's exercises, from the hint catalogue."""
    out: dict[str, set[int]] = {}
    for k in keys():
        m = _HINT.match(k)
        if m:
            out.setdefault(m.group(1), set()).add(int(m.group(2)))
    return {ch: len(nums) for ch, nums in sorted(out.items())}


class Progress:
    """The learner's record of exercises passed once (one JSON file, owner-only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: start again rather than fail a check
        if not isinstance(data, dict):
            return {}
        return {str(ch): {str(n): str(when) for n, when in v.items()}
                for ch, v in data.items() if isinstance(v, dict)}

    def chapter(self, chapter: str) -> list[int]:
        return sorted(int(n) for n in self.load().get(chapter, {}) if n.isdigit())

    def passed(self, chapter: str, number: int) -> None:
        """Note that exercise ``number`` of ``chapter`` passed (the first time is kept)."""
        if not chapter:
            return
        data = self.load()
        if str(number) in data.get(chapter, {}):
            return
        data.setdefault(chapter, {})[str(number)] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home: the check's verdict stands, only the record is lost


def default() -> Progress:
    """The learner's own record, in the lab home (``$LAB_HOME``, default ``<repo>/.lab``)."""
    from labcore.state import paths

    return Progress(paths().home / FILE)


@dataclass(frozen=True)
class ChapterProgress:
    chapter: str
    passed: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class Overview(Displayable):
    """Per chapter: exercises passed once / exercises (the index shows it)."""

    __view__ = "progress"
    chapters: tuple[ChapterProgress, ...] = field(default_factory=tuple)


def overview(progress: Progress | None = None) -> Overview:
    """The learner's progress per chapter: ``from kernel_ext.progress import overview; overview()``."""
    done: dict[str, Any] = (progress or default()).load()
    counts = exercise_counts()
    return Overview(tuple(
        ChapterProgress(ch, tuple(sorted(int(n) for n in done.get(ch, {}) if n.isdigit() and int(n) <= total)),
                        total)
        for ch, total in counts.items()))
