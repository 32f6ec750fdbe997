"""One catalogue of learner-facing messages, Simplified Chinese (default) and English.

Modules register their own keys with :func:`register`; everything a learner reads is looked up
with :func:`t`, so the course language is switched in one place (``DOCKERLAB_LANG=en``).

>>> register({"demo.hi": {"zh": "你好，{who}", "en": "Hello, {who}"}})
>>> t("demo.hi", who="lab", lang="en")
'Hello, lab'
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["language", "register", "set_language", "t"]

_CATALOGUE: dict[str, dict[str, str]] = {}
_LANG: list[str] = [os.environ.get("DOCKERLAB_LANG", "zh")]


def register(entries: dict[str, dict[str, str]]) -> None:
    """Add messages; each entry needs both ``zh`` and ``en``."""
    for key, texts in entries.items():
        missing = {"zh", "en"} - texts.keys()
        if missing:
            raise ValueError(f"message {key!r} lacks {sorted(missing)}")
        _CATALOGUE[key] = dict(texts)


def language() -> str:
    return _LANG[0]


def set_language(lang: str) -> None:
    if lang not in ("zh", "en"):
        raise ValueError("language must be 'zh' or 'en'")
    _LANG[0] = lang


def t(key: str, lang: str | None = None, **kwargs: Any) -> str:
    """The message ``key`` in the current language, formatted with ``kwargs``."""
    texts = _CATALOGUE.get(key)
    if texts is None:
        return key if not kwargs else f"{key} {kwargs}"
    return texts[lang or _LANG[0]].format(**kwargs)
