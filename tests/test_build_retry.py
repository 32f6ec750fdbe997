"""kernel_ext.build's one retry: the engine's intermittent unpacking race (moby/buildkit#6521) struck a
chapter 7 build on a fresh machine; the build runs once more, and the listing says so in its first line
and counts what the first attempt ran as run."""

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


# Chapter 7's cache demonstration as the engine printed it when the race struck (CI, stop 24): the first
# attempt ran the changed step and then failed unpacking; the second found that step in the cache.
FIRST = """#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#5 [internal] load build context
#5 transferring context: 32B done
#5 DONE 0.0s
#4 [1/5] FROM docker.io/library/busybox:1.35@sha256:0123
#4 DONE 0.0s
#6 [2/5] COPY message.txt /
#6 CACHED
#7 [3/5] RUN echo "第 1 步执行于 $(date +%s%N)" >> /steps.txt
#7 CACHED
#8 [4/5] RUN echo "第 2 步执行于 $(date +%s%N)" >> /steps.txt
#8 CACHED
#9 [5/5] RUN echo "第三步执行于 $(date +%s%N)" >> /steps.txt
#9 DONE 0.2s
#10 exporting to image
#10 ERROR: """ + RACE + "\n" + RACE + "\n"


def test_a_step_the_first_attempt_ran_is_listed_as_run_not_as_cached() -> None:
    second = FIRST.replace("#9 DONE 0.2s", "#9 CACHED").replace("#10 ERROR: " + RACE + "\n" + RACE + "\n",
                                                                "#10 DONE 0.1s\n")
    alone = build.parse(second, ["stage-0"], 0, "ch07/cache:1")
    assert alone.cached[-1].startswith('RUN echo "第三步')  # what the second attempt alone says
    b = build.retried(build.parse(FIRST, ["stage-0"], 1, "ch07/cache:1"), alone)
    assert b.ran == ['RUN echo "第三步执行于 $(date +%s%N)" >> /steps.txt'] and len(b.cached) == 3
    lines = str(b).splitlines()
    assert lines[0] == t("build.retried")
    assert lines[-2] == '=> [5/5] RUN echo "第三步执行于 $(date +%s%N)" >> /steps.txt'
    assert lines[-1] == t("build.done", tag="ch07/cache:1", n=5, cached=3)


def test_a_step_that_failed_or_never_finished_in_the_first_attempt_is_not_counted_as_run() -> None:
    first = build.parse(FIRST.replace("#9 DONE 0.2s\n", ""), ["stage-0"], 1, "ch07/cache:1")
    second = build.parse(FIRST.replace("#9 DONE 0.2s", "#9 CACHED"), ["stage-0"], 0, "ch07/cache:1")
    assert build.retried(first, second).cached[-1].startswith('RUN echo "第三步')


def test_build_runs_once_more_after_the_race_and_lists_both_attempts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``build`` itself, fed the two attempts above (the first given an output line): the listing says it ran twice
    and shows the changed step as run, with what it printed the first time."""
    import subprocess

    first = FIRST.replace("#9 DONE 0.2s", "#9 0.104 stamped\n#9 DONE 0.2s")
    second = FIRST.replace("#9 DONE 0.2s", "#9 CACHED").replace("#10 ERROR: " + RACE + "\n" + RACE + "\n",
                                                                "#10 DONE 0.1s\n")
    attempts = [subprocess.CompletedProcess([], 1, "", first), subprocess.CompletedProcess([], 0, "", second)]
    argvs: list[list[str]] = []

    def cli(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        argvs.append(cmd)
        return attempts.pop(0)

    monkeypatch.setattr(build, "_cli", cli)
    monkeypatch.setattr(build, "lab_config", lambda: type("C", (), {"docker_cli": "docker"})())
    lab = type("Lab", (), {"session": "s1"})()
    b = build.build(lab, "-t", "ch07/cache:1", "/nonexistent")
    assert len(argvs) == 2 and argvs[0] == argvs[1] and not attempts
    assert b.ok and b.retried and b.ran == ['RUN echo "第三步执行于 $(date +%s%N)" >> /steps.txt']
    assert "   │ stamped" in str(b).splitlines()
