"""One catalogue of learner-facing messages: gettext, Simplified Chinese (default) and English.

The messages live in ``kernel_ext/locale/<zh_CN|en>/LC_MESSAGES/kernel_ext.po`` (msgid = the key
used in the code, msgstr = a ``str.format`` template) and are read from the compiled ``.mo`` next to
each ``.po`` (``pybabel compile -d kernel_ext/locale -D kernel_ext`` after an edit; a test fails
when a ``.mo`` says something its ``.po`` does not). A message with a plural form takes its count as ``n``
(``ngettext``: "1 layer", "2 layers"; Chinese has one form). The course language is switched in one
place (``DOCKERLAB_LANG=en`` or :func:`set_language`).

>>> t("count.layers", n=1, lang="en"), t("count.layers", n=3, lang="en"), t("count.layers", n=3, lang="zh")
('1 layer', '3 layers', '3 个层')

An unknown key is a bug: with ``DOCKERLAB_STRICT_MESSAGES=1`` (the test suite sets it) :func:`t`
raises :class:`UnknownMessage`; a learner's kernel shows the key rather than fail.
"""

from __future__ import annotations

import functools
import gettext
import os
from pathlib import Path
from typing import Any

__all__ = ["DOMAIN", "LANGUAGES", "LOCALE_DIR", "UnknownMessage", "add_catalogue", "keys", "language",
           "set_language", "t"]

DOMAIN = "kernel_ext"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"zh": "zh_CN", "en": "en"}  # the course's language codes -> gettext locales

_LANG: list[str] = [os.environ.get("DOCKERLAB_LANG", "zh")]
_DOMAINS: list[tuple[str, Path]] = [(DOMAIN, LOCALE_DIR)]  # searched in order


class UnknownMessage(KeyError):
    """A key that no catalogue has (raised only in strict mode: the tests)."""


class _Catalogue(gettext.GNUTranslations):
    """A compiled catalogue that can say which keys it has, singular and plural."""

    def singular_keys(self) -> set[str]:
        return {k for k in self._catalog if isinstance(k, str) and k}  # type: ignore[attr-defined]

    def plural_keys(self) -> set[str]:
        return {k[0] for k in self._catalog if isinstance(k, tuple)}  # type: ignore[attr-defined]


@functools.cache
def _catalogue(domain: str, localedir: Path, lang: str) -> _Catalogue:
    with open(localedir / LANGUAGES[lang] / "LC_MESSAGES" / f"{domain}.mo", "rb") as f:
        return _Catalogue(f)


@functools.cache
def _index(lang: str, domains: tuple[tuple[str, Path], ...]) -> dict[str, tuple[_Catalogue, bool]]:
    """Key -> (its catalogue, whether it has plural forms); the first domain that has a key wins."""
    found: dict[str, tuple[_Catalogue, bool]] = {}
    for domain, localedir in domains:
        cat = _catalogue(domain, localedir, lang)
        for key in cat.singular_keys():
            found.setdefault(key, (cat, False))
        for key in cat.plural_keys():
            found.setdefault(key, (cat, True))
    return found


def add_catalogue(domain: str, localedir: Path | str) -> None:
    """Also look keys up in ``<localedir>/<locale>/LC_MESSAGES/<domain>.mo`` (another package's)."""
    entry = (domain, Path(localedir).resolve())
    if entry not in _DOMAINS:
        _DOMAINS.append(entry)


def keys(lang: str = "zh", plural: bool | None = None) -> set[str]:
    """The keys of kernel_ext's own catalogue in ``lang`` (only plural or singular ones if asked)."""
    return {k for k, (_, p) in _index(lang, ((DOMAIN, LOCALE_DIR),)).items() if plural is None or p == plural}


def language() -> str:
    return _LANG[0]


def set_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError("language must be 'zh' or 'en'")
    _LANG[0] = lang


def _strict() -> bool:
    return os.environ.get("DOCKERLAB_STRICT_MESSAGES", "") not in ("", "0")


def t(key: str, lang: str | None = None, **kwargs: Any) -> str:
    """The message ``key`` in the current language (or ``lang``), formatted with ``kwargs``; a
    message with plural forms is chosen by ``n``."""
    lang = lang or _LANG[0]
    hit = _index(lang, tuple(_DOMAINS)).get(key)
    if hit is not None:
        cat, plural = hit
        template = cat.ngettext(key, key, int(kwargs["n"])) if plural else cat.gettext(key)
        return template.format(**kwargs)
    if _strict():
        raise UnknownMessage(key)
    return key if not kwargs else f"{key} {kwargs}"
