"""kernel_ext.build's one retry: the engine's intermittent unpacking race (moby/buildkit#6521) struck a
chapter 7 build on a fresh machine; the build runs once more, and the listing says so in its first line."""

from __future__ import annotations

from kernel_ext import build
from kernel_ext.messages import t

# As the engine printed it (fresh-machine run, chapter 7's cache rebuild).
RACE = ('ERROR: failed to build: failed to solve: failed to prepare extraction snapshot "extract-757715574-2cME '
        'sha256:0f1c…": parent snapshot sha256:9a7e… does not exist: not found')


def test_the_race_is_recognised_and_nothing_else() -> None:
    assert build._SNAPSHOT_RACE.search(RACE)
    missing = 'ERROR: failed to solve: failed to compute cache key: "/secret.txt": not found'
    assert not build._SNAPSHOT_RACE.search(missing)
    assert not build._SNAPSHOT_RACE.search("#7 ERROR: process \"/bin/sh -c false\" did not complete successfully")


def test_a_retried_build_says_so_first_and_then_lists_the_second_attempt() -> None:
    b = build.parse(build.PLAIN_EXAMPLE, stages=["stage-0"], tag="app:1")
    assert t("build.retried") not in str(b)
    b.retried = True
    lines = str(b).splitlines()
    assert lines[0] == t("build.retried") and "moby/buildkit#6521" in lines[0]
    assert lines[1:] == str(build.parse(build.PLAIN_EXAMPLE, stages=["stage-0"], tag="app:1")).splitlines()
