"""Chapter 7's checks know the usual mistakes, on the real engine: each wrong way of doing an exercise
fails with the reason the hint names (tests/test_exercises.py runs the exercises as given and with their
reference answers; this file runs the mistakes in between). Builds are small (busybox), except the one
image that has to be big."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from kernel_ext import exercises
from kernel_ext.build import build
from tests.support.engine_objects import engine_objects, restore

pytestmark = pytest.mark.engine


def _context(files: dict[str, str]) -> str:
    d = Path(tempfile.mkdtemp(prefix="dockerlab-ch07-test-"))
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def _built(lab: Any, tag: str, dockerfile: str, **files: str) -> str:
    ctx = _context({"Dockerfile": dockerfile, **files})
    b = build(lab, "-t", tag, ctx)
    assert b.ok, str(b)
    return ctx


@pytest.fixture(scope="module", autouse=True)
def _as_it_was(client):  # type: ignore[no-untyped-def]
    """The images these builds leave (and their bases' layers) would make the chapters after this file
    find layers a fresh engine has not got: everything made here goes again, and BuildKit's cache."""
    before = engine_objects(client)
    yield
    restore(client, before)


@pytest.fixture
def checks(lab):  # type: ignore[no-untyped-def]
    for ref in ("busybox:1.35", "nginx:1.22", "debian:bookworm"):
        lab.pull(ref, progress=False)
    return exercises.start(lab, "07")


def test_a_leftover_and_a_committed_image_do_not_pass_as_built(lab, unique) -> None:  # type: ignore[no-untyped-def]
    lab.pull("busybox:1.35", progress=False)
    _built(lab, f"ch07t/old:{unique}", 'FROM busybox:1.35\nRUN echo old > /old.txt\n')
    checks = exercises.start(lab, "07")  # the learner opens the chapter after that build
    assert checks.non_root(f"ch07t/old:{unique}").key == "ex.img.old"
    c = lab.api.create_container("busybox:1.35", ["sh", "-c", "echo hi > /index.html"], labels=dict(lab.labels))
    lab.api.start(c["Id"])
    lab.api.wait(c["Id"])
    lab.api.commit(c["Id"], repository="ch07t/commit", tag=unique)
    r = checks.built_page(f"ch07t/commit:{unique}", "hi")
    assert not r and r.key == "ex7.commit", r


def test_a_page_image_whose_cmd_exits_or_serves_another_page(lab, checks, unique) -> None:  # type: ignore[no-untyped-def]
    _built(lab, f"ch07t/web:{unique}", "FROM nginx:1.22\nRUN echo '<h1>第七章完成</h1>' > /index.html\n"
           'CMD ["nginx"]\n')  # nginx goes to the background: the container's PID 1 is gone at once
    r = checks.built_page(f"ch07t/web:{unique}", "第七章完成", base="nginx:1.22")
    assert not r and r.key == "ex7.page.exited", r
    _built(lab, f"ch07t/web2:{unique}", "FROM nginx:1.22\nRUN echo '<h1>第七章完成</h1>' > /index.html\n")
    r = checks.built_page(f"ch07t/web2:{unique}", "第七章完成", base="nginx:1.22")
    assert not r and r.key == "ex7.page.content" and "Welcome to nginx" in r.reason, r
    r = checks.built_page(f"ch07t/web2:{unique}", "第七章完成", base="busybox:1.35")
    assert not r and r.key == "ex7.base", r


def test_the_given_order_reruns_the_dependency_step_and_a_tag_is_not_a_rebuild(lab, checks, unique) -> None:  # type: ignore[no-untyped-def]
    given = ("FROM busybox:1.35\nWORKDIR /app\nCOPY . /app/\n"
             "RUN head -c 8 /dev/urandom | od -An -tx1 | tr -d ' ' > /installed\n")
    ctx = _built(lab, f"ch07t/app:1-{unique}", given, **{"app.sh": "v1\n"})
    lab.api.tag(f"ch07t/app:1-{unique}", "ch07t/app", f"2-{unique}")
    r = checks.cache_reused(f"ch07t/app:1-{unique}", f"ch07t/app:2-{unique}", "/installed", "/app/app.sh")
    assert not r and r.key == "ex7.cache.same", r
    b = build(lab, "-t", f"ch07t/app:2-{unique}", ctx)  # nothing changed: the same steps, all from the cache
    assert b.ok and len(b.cached) == 3, str(b)
    r = checks.cache_reused(f"ch07t/app:1-{unique}", f"ch07t/app:2-{unique}", "/installed", "/app/app.sh")
    assert not r and r.key == "ex7.cache.nochange", r
    Path(ctx, "app.sh").write_text("v2\n")
    b = build(lab, "-t", f"ch07t/app:2-{unique}", ctx)
    assert b.ok and "COPY . /app/" in b.ran and b.ran[-1].startswith("RUN head"), str(b)
    r = checks.cache_reused(f"ch07t/app:1-{unique}", f"ch07t/app:2-{unique}", "/installed", "/app/app.sh")
    assert not r and r.key == "ex7.cache.rerun", r


def test_a_single_stage_image_is_too_big(lab, checks, unique) -> None:  # type: ignore[no-untyped-def]
    _built(lab, f"ch07t/tiny:{unique}", "FROM debian:bookworm\nRUN echo page > /index.html\n")
    r = checks.smaller_than(f"ch07t/tiny:{unique}", 10, "page")
    assert not r and r.key == "ex7.size.big" and "debian" in r.reason, r


def test_root_an_unknown_user_and_a_numeric_uid(lab, checks, unique) -> None:  # type: ignore[no-untyped-def]
    _built(lab, f"ch07t/user:root-{unique}", "FROM busybox:1.35\nCMD [\"id\"]\n")
    assert checks.non_root(f"ch07t/user:root-{unique}").key == "ex7.user.root"
    _built(lab, f"ch07t/user:zero-{unique}", "FROM busybox:1.35\nUSER 0\n")
    assert checks.non_root(f"ch07t/user:zero-{unique}").key == "ex7.user.root"
    _built(lab, f"ch07t/user:unknown-{unique}", "FROM busybox:1.35\nUSER app\n")
    r = checks.non_root(f"ch07t/user:unknown-{unique}")
    assert not r and r.key == "ex7.user.unknown" and "passwd" in r.reason, r
    _built(lab, f"ch07t/user:uid-{unique}", "FROM busybox:1.35\nUSER 1000\n")
    r = checks.non_root(f"ch07t/user:uid-{unique}")
    assert r and "uid=1000" in r.reason, r
