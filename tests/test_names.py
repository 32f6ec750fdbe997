"""The book's names and the course's own (kernel_ext.names): plain Python, no engine."""

from __future__ import annotations

import doctest

import pytest

from kernel_ext import names
from kernel_ext.names import aliases, candidates, own, rewrite_args, rewrite_shell


@pytest.fixture(autouse=True)
def _clean():  # type: ignore[no-untyped-def]
    aliases.clear()
    yield
    aliases.clear()


def test_doctests() -> None:
    assert doctest.testmod(names).failed == 0


def test_no_alias_changes_nothing() -> None:
    args = ["run", "--name", "webserver", "nginx:v2"]
    assert rewrite_args(args) == args and rewrite_shell("docker rm webserver") == "docker rm webserver"
    assert own("webserver") == "webserver"


def test_whole_names_only() -> None:
    aliases.use("webserver", "webserver-lab")
    aliases.use("nginx:v2", "nginx:v2-lab")
    assert rewrite_args(["commit", "webserver", "nginx:v2", "webserver2", "nginx:v20", "nginx"]) == \
        ["commit", "webserver-lab", "nginx:v2-lab", "webserver2", "nginx:v20", "nginx"]
    assert rewrite_shell("docker commit webserver nginx:v2 && echo 'webserver/x' nginx:v2x") == \
        "docker commit webserver-lab nginx:v2-lab && echo 'webserver/x' nginx:v2x"
    aliases.use("webserver", "webserver")  # the name is free again: forgotten
    assert own("webserver") == "webserver" and "webserver" not in aliases


def test_candidates_are_valid_names() -> None:
    from kernel_ext.refs import parse

    for ref in ("nginx", "nginx:v2", "127.0.0.1:5100/course/busybox:mine", "dockerlab/greeting"):
        for c in candidates(ref, "image", 3):
            assert parse(c).tag and parse(c).tag.endswith(("-lab", "-lab2", "-lab3"))
    assert candidates("ch03-notes", "volume", 1) == ["ch03-notes-lab"]
