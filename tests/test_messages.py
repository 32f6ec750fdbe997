"""kernel_ext.messages: one gettext catalogue (zh_CN, en), every key used exists, none is dead."""

from __future__ import annotations

import ast
import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from kernel_ext import messages
from kernel_ext.messages import LANGUAGES, LOCALE_DIR, UnknownMessage, keys, t

PACKAGE = Path(messages.__file__).resolve().parent
KEY = re.compile(r"^[a-z][a-z_0-9]*(?:\.[a-z_0-9]+)+$")


def _literals() -> dict[str, list[str]]:
    """Every key-shaped string literal in kernel_ext's code -> where it is."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
                found.setdefault(node.value, []).append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def _po(lang: str):  # type: ignore[no-untyped-def]
    with open(LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / "kernel_ext.po", "rb") as f:
        return read_po(f)


def _texts(catalog) -> dict[str, tuple[str, ...]]:  # type: ignore[no-untyped-def]
    """Key -> its text(s): one for a plain message, one per plural form."""
    return {(m.id if isinstance(m.id, str) else m.id[0]): tuple([m.string] if isinstance(m.string, str) else m.string)
            for m in catalog if m.id}


def test_both_languages_have_the_same_keys_and_plurals() -> None:
    assert keys("zh") == keys("en") and len(keys("zh")) > 100
    assert keys("zh", plural=True) == keys("en", plural=True) and "count.layers" in keys("en", plural=True)


def test_every_key_used_in_the_code_exists_and_no_key_is_dead() -> None:
    used = _literals()
    prefixes = {k.split(".")[0] for k in keys()}
    missing = {k: where for k, where in used.items() if k.split(".")[0] in prefixes and k not in keys()}
    assert not missing, f"keys used in the code but not in the catalogue: {missing}"
    # hint.chNN.exK.1/.2 are named by the chapters' check cells (checks.ex(K)), not by the code:
    # tests/test_hints.py holds them to the chapters' exercises, both ways.
    dead = {k for k in keys() - used.keys() if not k.startswith("hint.")}
    assert not dead, f"keys in the catalogue that no code uses: {sorted(dead)}"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_mo_files_are_compiled_from_the_po_files(lang: str) -> None:
    """The committed .mo says exactly what its .po says (run pybabel compile after editing a .po)."""
    with open(LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / "kernel_ext.mo", "rb") as f:
        mo = _texts(read_mo(io.BufferedReader(f)))
    assert mo == _texts(_po(lang)), "run: .venv/bin/pybabel compile -d kernel_ext/locale -D kernel_ext"


def test_both_languages_take_the_same_fields() -> None:
    def fields(texts: tuple[str, ...]) -> set[str]:
        return {f for s in texts for _, f, _, _ in string.Formatter().parse(s) if f}

    zh, en = _texts(_po("zh")), _texts(_po("en"))
    differ = {k: (fields(zh[k]), fields(en[k])) for k in zh if fields(zh[k]) != fields(en[k])}
    assert not differ
    for m in _po("en"):
        if m.id and not isinstance(m.id, str):
            assert all("{n}" in s or "{n:" in s for s in m.string), m.id  # the count is n


def test_plurals_in_english_one_form_in_chinese() -> None:
    assert t("chk.dangling.some", n=1, lang="en").startswith("1 dangling image left")
    assert t("chk.dangling.some", n=2, lang="en").startswith("2 dangling images left")
    assert (t("chk.dangling.some", n=2, lang="zh")
            == "还有 2 个虚悬镜像：用 docker image prune 或 docker image rm 删除它们")
    assert t("count.running", n=1, lang="en") == "1 running container"


def test_an_unknown_key_raises_in_tests_and_shows_the_key_to_a_learner(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOCKERLAB_STRICT_MESSAGES", "1")
    with pytest.raises(UnknownMessage):
        t("no.such.key")
    monkeypatch.setenv("DOCKERLAB_STRICT_MESSAGES", "0")
    assert t("no.such.key") == "no.such.key"


def test_another_package_adds_its_own_catalogue() -> None:
    """The labs' messages live in their own gettext domain, found through add_catalogue."""
    import labs.grading.messages  # noqa: F401 - importing it adds the "labs" domain

    assert t("labs.registry_down", err="x", lang="en") == "cannot reach the registry: x"
    assert "labs.registry_down" not in messages.keys("en")  # kernel_ext's own catalogue stays its own
