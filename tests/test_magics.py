"""Magics through IPython's own machinery (ip.run_line_magic), against the real engine."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def ip():  # type: ignore[no-untyped-def]
    shell = start_ipython()
    shell.run_line_magic("load_ext", "kernel_ext")
    yield shell
    shell.run_line_magic("unload_ext", "kernel_ext")


def test_docker_magic_runs_the_real_cli(ip, capsys, state) -> None:
    ip.run_line_magic("docker", "version --format '{{.Server.Version}}'")
    assert capsys.readouterr().out.strip()[:2].isdigit()


def test_docker_pull_magic_returns_a_pull_result(ip) -> None:
    from kernel_ext import PullResult

    assert isinstance(ip.run_line_magic("docker", "pull hello-world"), PullResult)


def test_layers_diff_history_and_errors(ip, unique, lab) -> None:
    assert "hello-world" in ip.run_line_magic("layers", "hello-world").source
    lab.run("busybox", "sleep 60", name=f"m-{unique}")
    assert ip.run_line_magic("diff", f"m-{unique}").entries == ()
    assert ip.run_line_magic("history", "hello-world").rows
    with pytest.raises(UsageError, match="nosuch"):
        ip.run_line_magic("history", "nosuch:1")
    with pytest.raises(UsageError):
        ip.run_line_magic("diff", "")


def test_reload_ext_works(ip) -> None:
    ip.run_line_magic("reload_ext", "kernel_ext")
    assert "docker" in ip.magics_manager.magics["line"]


def test_docker_magic_expands_plain_names_not_go_templates(ip, capsys) -> None:
    ip.user_ns["WHICH"] = "hello-world"
    ip.run_line_magic("docker", "image ls {WHICH} --format '{{.Repository}}'")
    assert capsys.readouterr().out.strip() == "hello-world"
