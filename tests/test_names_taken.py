"""Issue 21 item 9: every name the chapters use, already held by the learner's own object.

The learner's objects are planted without the course's labels (as if typed in a terminal): an
image imported from a tarball (no course content label), containers created from it, volumes.
Each chapter's setup reset must leave every one of them as it was, say so in one sentence per
name, and give the course a name of its own; chapter 6's commit path (6.4: ``webserver`` ->
``nginx:v2`` -> ``web2``) must then run through, cell by cell, without an error and without
touching the learner's ``webserver``, ``nginx:v2``, ``web2`` or ``nginx:1.22`` (the course's copy of
a registry image goes under its own name too).
"""

from __future__ import annotations

import ast
import io
import tarfile
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from kernel_ext.names import aliases, candidates
from kernel_ext.reset import COURSE_IMAGE_LABEL, reset
from labctl import authoring
from tests.support.engine_objects import engine_objects, restore

pytestmark = pytest.mark.engine

# images the lab's registry serves (images/catalogue.toml) among the chapters' names
REGISTRY_IMAGES = {"nginx:1.22", "busybox:1.35", "hello-world:latest", "redis:7.0", "debian:bookworm", "registry:2"}
SRC = Path(__file__).resolve().parents[1] / "notebooks" / "src"


def _cells(md: Path) -> list[str]:
    """The chapter's code cells as its kernel runs them: jupytext reads the source, so a cell's options
    (its tags, a collapsed input's ``jupyter:`` block) are not part of its code."""
    nb = authoring.read_source(authoring.Chapter(md, md.parent.parent / f"{md.stem}.ipynb"))
    return [c.source for c in nb.cells if c.cell_type == "code"]


def chapter_names(md: Path, lab: Any) -> dict[str, list[str]]:
    """The names a chapter's setup ``reset(lab, ...)`` call uses, evaluated as the chapter does."""
    for cell in _cells(md):
        if "reset(lab" not in cell:
            continue
        tree = ast.parse("\n".join(line for line in cell.splitlines() if not line.startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "reset":
                return {kw.arg: list(eval(compile(ast.Expression(kw.value), md.name, "eval"), {"lab": lab}))
                        for kw in node.keywords if kw.arg in ("containers", "images", "volumes")}
    return {}


def _learner_image(api: Any) -> str:
    """An image of the learner's own: imported from a tarball, so it has no label at all."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"mine\n"
        info = tarfile.TarInfo("mine.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out = api.import_image_from_data(buf.getvalue(), repository="learner-own", tag="base")
    return str(api.inspect_image("learner-own:base")["Id"]) if out else ""


def _ids(api: Any, names: dict[str, list[str]]) -> dict[tuple[str, str], str]:
    got = {}
    for kind, items in names.items():
        for n in items:
            if kind == "containers":
                got[(kind, n)] = api.inspect_container(n)["Id"]
            elif kind == "images":
                got[(kind, n)] = api.inspect_image(n)["Id"]
            else:
                got[(kind, n)] = api.inspect_volume(n)["Name"] + str(api.inspect_volume(n).get("Labels"))
    return got


def _plant(api: Any, image_id: str, names: dict[str, list[str]]) -> None:
    for ref in names.get("images", []):
        try:
            api.remove_image(ref, force=True)  # whatever holds the name now (a course image: the registry has it)
        except docker.errors.NotFound:
            pass
        repo, _, tag = ref.rpartition(":") if ref.rfind(":") > ref.rfind("/") else (ref, "", "latest")
        api.tag(image_id, repo, tag)
    for name in names.get("containers", []):
        try:
            api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass
        api.create_container(image_id, command=["/mine.txt"], name=name)
    for name in names.get("volumes", []):
        try:
            api.remove_volume(name, force=True)
        except docker.errors.NotFound:
            pass
        api.create_volume(name)


def _unplant(api: Any, names: dict[str, list[str]]) -> None:
    for kind, items in names.items():
        for n in items:
            for name in (n, *candidates(n, kind.rstrip("s"), 2)):
                try:
                    if kind == "containers":
                        api.remove_container(name, force=True)
                    elif kind == "images":
                        api.remove_image(name, force=True)
                    else:
                        api.remove_volume(name, force=True)
                except docker.errors.APIError:
                    pass


@pytest.fixture(scope="module", autouse=True)
def _as_it_was(client):  # type: ignore[no-untyped-def]
    """What these chapters' cells pull, run and commit goes again (the chapters nbval runs after this file
    compare outputs that a fresh engine gives: chapter 5's first pull must download nginx's layers)."""
    before = engine_objects(client)
    yield
    restore(client, before)


@pytest.mark.parametrize("md", sorted(SRC.glob("0[1-6]-*.md")), ids=lambda p: p.stem[:2])
def test_every_name_a_chapter_uses_can_be_the_learners(md: Path, lab, capsys) -> None:  # type: ignore[no-untyped-def]
    names = chapter_names(md, lab)
    assert names.get("containers") or names.get("images"), f"{md.name}: no reset call found"
    api = lab.api
    image_id = _learner_image(api)
    try:
        _plant(api, image_id, names)
        before = _ids(api, names)
        capsys.readouterr()
        for _ in range(2):  # the setup cell, then a re-run of it (the course's names are reset too)
            reset(lab, **names)
            said = capsys.readouterr().out
            assert _ids(api, names) == before  # every learner object as it was
            for kind, items in names.items():
                for n in items:
                    mine = aliases[n]
                    assert mine != n and f" {n} " in said and mine in said, (n, said)
            assert len(said.strip().splitlines()) == sum(len(v) for v in names.values())
            # a course image the chapter pulls or runs is there under the course's own name
            for ref in REGISTRY_IMAGES & set(names.get("images", [])):
                assert COURSE_IMAGE_LABEL in (api.inspect_image(aliases[ref])["Config"].get("Labels") or {}), ref
        assert "Traceback" not in said
    finally:
        _unplant(api, names)
        aliases.clear()
        try:
            api.remove_image("learner-own:base", force=True)
        except docker.errors.APIError:
            pass


def test_chapter6_commit_path_with_the_learners_webserver(lab, state, capsys) -> None:  # type: ignore[no-untyped-def]
    """6.4 cell by cell while the learner's own ``webserver``, ``web2``, ``nginx:v2`` and ``nginx:1.22`` exist."""
    from IPython.testing import globalipapp

    ip = globalipapp.get_ipython()  # the one test shell (started here or by test_magics)
    loaded = "kernel_ext" in ip.extension_manager.loaded
    api = lab.api
    image_id = _learner_image(api)
    mine = {"containers": ["webserver", "web2"], "images": ["nginx:v2", "nginx:1.22"]}
    cells = _cells(SRC / "06-images.md")
    setup = cells[:2]
    start = next(i for i, c in enumerate(cells) if "--name webserver" in c)
    end = next(i for i, c in enumerate(cells) if 'expect_http(url_of("web2")' in c)
    try:
        _plant(api, image_id, mine)
        before = _ids(api, mine)
        for src in [*setup, *cells[start:end + 1]]:
            result = ip.run_cell(src)
            assert result.success, (src, result.error_in_exec or result.error_before_exec)
        ip.run_line_magic("docker", "pull -q nginx:1.22")  # the book's pull, options and all
        out = capsys.readouterr().out
        assert "webserver-lab" in out and "nginx:v2-lab" in out and "web2-lab" in out
        assert "Hello, Docker!" in out  # the course's own web2 serves the committed page
        assert ip.user_ns["check"].expect_http(ip.user_ns["url_of"]("web2"), "Hello, Docker!").ok
        assert _ids(api, mine) == before
        assert api.inspect_container("web2-lab")["Config"]["Image"] == "nginx:v2-lab"
        assert api.inspect_container("webserver-lab")["Config"]["Image"] == "nginx:1.22-lab"
    finally:
        ip.run_cell(cells[-1] if "reset(lab" in cells[-1] else "")
        if not loaded:  # as test_magics expects to find it
            ip.run_line_magic("unload_ext", "kernel_ext")
        _unplant(api, mine)
        aliases.clear()
        try:
            api.remove_image("learner-own:base", force=True)
        except docker.errors.APIError:
            pass
