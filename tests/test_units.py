"""Pure parts: references, formatting, messages, removal's chain ids, efficiency rule."""

from __future__ import annotations

import pytest

from kernel_ext.errors import BadReference
from kernel_ext.formatting import human_size
from kernel_ext.image_efficiency import efficiency_from_layers
from kernel_ext.messages import t
from kernel_ext.refs import parse
from kernel_ext.removal import chain_ids


@pytest.mark.parametrize("ref,familiar", [
    ("nginx", "nginx:latest"), ("docker.io/library/nginx:1.22", "nginx:1.22"),
    ("127.0.0.1:5000/course/web:v2", "127.0.0.1:5000/course/web:v2"),
    ("dockerlab/greeting", "dockerlab/greeting:latest"),
])
def test_references(ref: str, familiar: str) -> None:
    assert parse(ref).familiar == familiar


@pytest.mark.parametrize("bad", ["Nginx", "nginx:", "a b", "", "-x"])
def test_bad_references(bad: str) -> None:
    with pytest.raises(BadReference):
        parse(bad)


def test_sizes_like_the_cli() -> None:
    assert [human_size(x) for x in (0, 999, 1000, 1_990_000, 94_900_000)] == ["0B", "999B", "1kB", "1.99MB", "94.9MB"]


def test_messages_in_both_languages() -> None:
    assert "./lab up" in t("engine.down", host="x", lang="zh") and "./lab up" in t("engine.down", host="x", lang="en")


def test_chain_ids_follow_the_engine_rule() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    chain = chain_ids([a, b])
    import hashlib

    assert chain[0] == a and chain[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def test_efficiency_rule() -> None:
    eff = efficiency_from_layers("x", [[("etc/a", 100), ("bin/b", 900)], [("etc/a", 100)], [("etc/.wh.a", 0)]])
    assert eff.wasted_bytes == 200 and eff.total_bytes == 1100 and eff.inefficient[0][:2] == ("etc/a", 3)


def test_no_api_version_is_hardcoded() -> None:
    """Docker 29 refuses API < 1.44: every call uses the version docker-py negotiated."""
    import re
    from pathlib import Path

    import kernel_ext

    root = Path(kernel_ext.__file__).parent
    for f in root.rglob("*.py"):
        assert not re.search(r"/v1\.\d+/|version=['\"]1\.\d+", f.read_text()), f
