"""Magics through IPython's own machinery (ip.run_line_magic), against the real engine."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def ip():  # type: ignore[no-untyped-def]
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()  # another test may have started it
    shell.run_line_magic("load_ext", "kernel_ext")
    yield shell
    shell.run_line_magic("unload_ext", "kernel_ext")


def test_docker_magic_runs_the_real_cli(ip, capsys, state) -> None:
    ip.run_line_magic("docker", "version --format '{{.Server.Version}}'")
    assert capsys.readouterr().out.strip()[:2].isdigit()


def test_docker_pull_magic_shows_its_log_once_and_leaves_no_widget(ip, monkeypatch) -> None:
    """The live view closes when the pull is over and leaves an empty output in its place; the
    result follows as static HTML, and the magic returns nothing (no second copy of the log)."""
    from kernel_ext import PullResult

    published: list[dict] = []
    monkeypatch.setattr(ip.display_pub, "publish",
                        lambda data, metadata=None, source=None, *, transient=None, update=False, **kw:
                        published.append({"data": data, "id": (transient or {}).get("display_id"), "update": update}))
    displayed: list[object] = []
    real_format = ip.display_formatter.format
    monkeypatch.setattr(ip.display_formatter, "format",
                        lambda obj, *a, **kw: (displayed.append(obj), real_format(obj, *a, **kw))[1])
    assert ip.run_line_magic("docker", "pull hello-world") is None
    widget = "application/vnd.jupyter.widget-view+json"
    live = [p for p in published if widget in p["data"]]
    assert len(live) == 1 and live[0]["id"] and live[0]["data"]["text/plain"] == ""
    assert [p["data"] for p in published if p["update"] and p["id"] == live[0]["id"]][-1] == {"text/plain": ""}
    logs = [p["data"]["text/plain"] for p in published
            if not p["update"] and "Digest: sha256:" in p["data"].get("text/plain", "")]
    assert len(logs) == 1 and "dockerlab-pull" in published[-1]["data"]["text/html"]
    assert any(isinstance(obj, PullResult) for obj in displayed)


def test_layers_diff_docker_history_and_errors(ip, unique, lab, capsys) -> None:
    assert "hello-world" in ip.run_line_magic("layers", "hello-world").source
    lab.run("busybox", "sleep 60", name=f"m-{unique}")
    assert ip.run_line_magic("diff", f"m-{unique}").entries == ()
    ip.run_line_magic("docker", "history hello-world")  # the book's command, the CLI's own table
    assert "CREATED BY" in capsys.readouterr().out
    with pytest.raises(UsageError, match="nosuch"):
        ip.run_line_magic("diff", "nosuch")
    with pytest.raises(UsageError):
        ip.run_line_magic("diff", "")
    with pytest.raises(UsageError):
        ip.run_line_magic("lab", "wipe-everything")  # magic_arguments: one usage line, no SystemExit


def test_load_shadows_no_builtin_and_unload_restores_exactly(ip) -> None:  # type: ignore[no-untyped-def]
    from kernel_ext.errors import LabError

    shell = ip
    shell.run_line_magic("unload_ext", "kernel_ext")  # the module's fixture loaded it
    builtin_history = shell.magics_manager.magics["line"]["history"]

    def mine(shell, etype, value, tb, tb_offset=None):  # type: ignore[no-untyped-def]
        return None

    shell.set_custom_exc((KeyError,), mine)
    before_magics = dict(shell.magics_manager.magics["line"])
    before_exc = (shell.custom_exceptions, shell.CustomTB)
    before_cleanup = list(shell.input_transformers_cleanup)
    shell.run_line_magic("load_ext", "kernel_ext")
    from kernel_ext.names import rewrite_bang_lines

    assert shell.input_transformers_cleanup == [*before_cleanup, rewrite_bang_lines]  # `!docker` lines
    line = shell.magics_manager.magics["line"]
    assert line["history"] is builtin_history and line["hist"] is before_magics["hist"]
    assert {"docker", "layers", "diff", "lab"} <= set(line)
    assert shell.custom_exceptions == (LabError,)
    shell.run_line_magic("unload_ext", "kernel_ext")
    assert dict(shell.magics_manager.magics["line"]) == before_magics
    assert (shell.custom_exceptions, shell.CustomTB) == before_exc
    assert shell.input_transformers_cleanup == before_cleanup
    shell.set_custom_exc((), None)
    shell.run_line_magic("load_ext", "kernel_ext")


def test_reload_ext_works(ip) -> None:
    ip.run_line_magic("reload_ext", "kernel_ext")
    assert "docker" in ip.magics_manager.magics["line"]


def test_docker_magic_expands_plain_names_not_go_templates(ip, capsys) -> None:
    ip.user_ns["WHICH"] = "hello-world"
    ip.run_line_magic("docker", "image ls {WHICH} --format '{{.Repository}}'")
    assert capsys.readouterr().out.strip() == "hello-world"


def test_docker_run_magic_labels_the_container_and_reset_spares_unlabelled(ip, client, lab, unique) -> None:
    """`%docker run` labels its container with the session (as Lab.run does); a chapter's reset
    removes that one and leaves a same-named container the learner made elsewhere (no label)."""
    from kernel_ext import magics
    from kernel_ext.connection import SESSION_LABEL
    from kernel_ext.reset import reset

    name = f"m-lab-{unique}"
    mine = f"m-own-{unique}"
    try:
        ip.run_line_magic("docker", f"run -d --name {name} busybox:1.35 sleep 60")
        ip.run_line_magic("docker", f"commit {name} m-commit-{unique}:v1")
        session = magics._get_lab().session
        labels = client.containers.get(name).labels
        assert labels.get(SESSION_LABEL) == session
        assert client.images.get(f"m-commit-{unique}:v1").labels.get(SESSION_LABEL) == session
        client.containers.run("busybox:1.35", "sleep 60", name=mine, detach=True)  # no label
        report = reset(lab, containers=[name, mine], images=[f"m-commit-{unique}:v1"])
        assert report.containers == [name] and report.images == [f"m-commit-{unique}:v1"]
        assert client.containers.get(mine).status == "running"
        assert not client.containers.list(all=True, filters={"name": f"^{name}$"})
    finally:
        for n in (name, mine):
            for c in client.containers.list(all=True, filters={"name": f"^{n}$"}):
                c.remove(force=True)
        for img in client.images.list(name=f"m-commit-{unique}"):
            client.images.remove(img.id, force=True)
