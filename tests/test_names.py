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


def test_bang_docker_lines_use_the_course_names() -> None:
    """`!docker` lines are rewritten as `%docker` lines are, through IPython's own input transformation
    (the same cleanup stage a kernel runs), and nothing else in the cell is."""
    from IPython.core.inputtransformer2 import TransformerManager

    aliases.use("webserver", "webserver-lab")
    tm = TransformerManager()
    tm.cleanup_transforms.append(names.rewrite_bang_lines)
    cell = ("!docker logs webserver\nout = !docker inspect webserver --format json\n"
            "!docker exec {webserver} true\n!echo webserver\nname = 'webserver'\n")
    code = tm.transform_cell(cell)
    assert "system('docker logs webserver-lab')" in code
    assert "getoutput('docker inspect webserver-lab --format json')" in code
    assert "docker exec {webserver} true" in code  # a Python expression, expanded by `!` itself
    assert "system('echo webserver')" in code and "name = 'webserver'" in code
    aliases.clear()
    assert tm.transform_cell(cell) == TransformerManager().transform_cell(cell)


def test_a_bang_docker_pull_of_a_held_name_pulls_the_course_copy() -> None:
    """`!docker pull X` would move the learner's name X: it becomes `%docker pull X`, which pulls the
    course's copy under the course's own name (Lab.pull), as a `%docker pull` line does."""
    from IPython.core.inputtransformer2 import TransformerManager

    aliases.use("busybox:1.35", "busybox:1.35-lab")
    tm = TransformerManager()
    tm.cleanup_transforms.append(names.rewrite_bang_lines)
    code = tm.transform_cell("!docker pull -q busybox:1.35 >/dev/null\nout = !docker image pull busybox:1.35\n"
                             "!docker pull busybox:latest\n")
    assert code.count("run_line_magic('docker', 'pull busybox:1.35')") == 2 and "out = get_ipython()" in code
    assert "system('docker pull busybox:latest')" in code
