"""The Hub's side of the mediator (``classroom.spawner``): the mediator runs as the member, so what it
writes back is theirs to shape (a member who can ptrace it could make it flood). Stand-ins for it flood
stdout and stderr; the Hub keeps little, logs a few lines, and fails the call with one line or goes on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import resource
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("sudospawner")

from classroom import spawner  # noqa: E402

REPLY = '{"ok": true, "alive": true}'


class StandIn(spawner.ClassSpawner):  # type: ignore[misc]
    script = ""

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]


def _spawner(script: str, caplog: pytest.LogCaptureFixture) -> StandIn:
    s = StandIn(user=SimpleNamespace(name="learner1", url="/user/learner1/", escaped_name="learner1"),
                enter_path="/nonexistent")
    s.script = "import os, sys\nsys.stdin.read()\n" + script
    s.log = logging.getLogger("test-spawner")
    caplog.set_level(logging.INFO, logger="test-spawner")
    return s


def _run(coro):  # type: ignore[no-untyped-def]
    """``asyncio.run`` in a thread of its own: an earlier test in the same process (Playwright's sync API
    in tests/e2e) can leave an event loop marked running in the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_flood_on_stdout_fails_the_call_and_is_not_held(caplog: pytest.LogCaptureFixture) -> None:
    """400 MiB on stdout, no reply: the call fails with one line, the Hub's memory barely moves."""
    s = _spawner("chunk = b'x' * (1 << 20)\nfor _ in range(400):\n    os.write(1, chunk)\n", caplog)
    before = _peak_mib()
    with pytest.raises(RuntimeError, match="over 64 KiB") as e:
        _run(s.do("kill", pid=1, signal=0))
    assert "\n" not in str(e.value)
    assert _peak_mib() - before < 40, f"the Hub's peak grew {_peak_mib() - before:.0f} MiB"
    assert [r for r in caplog.records if "over 64 KiB" in r.getMessage()]


def test_a_flood_on_stderr_is_a_few_lines_and_the_reply_still_counts(caplog: pytest.LogCaptureFixture,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """200,000 lines on stderr (with control characters), then the reply: a few lines logged, the rest
    dropped with one line saying so, and nothing written to the Hub's own stderr."""
    s = _spawner("try:\n    for i in range(200000):\n        os.write(2, b'\\x1b[2Jline %d\\n' % i)\nexcept OSError:\n"
                 "    pass\n"
                 f"print({REPLY!r})\n", caplog)
    reply = _run(s.do("kill", pid=1, signal=0))
    assert reply == {"ok": True, "alive": True}
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) <= spawner.MAX_LINES + 2, len(logged)
    assert any("the rest is dropped" in m for m in logged), logged[-3:]
    assert not any("\x1b" in m for m in logged)
    assert capsys.readouterr().err.count("line ") == 0


def test_one_endless_line_on_stderr_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    s = _spawner("try:\n    os.write(2, b'y' * (64 << 20))\nexcept OSError:\n    pass\n"
                 f"print({REPLY!r})\n", caplog)
    before = _peak_mib()
    assert _run(s.do("kill", pid=1, signal=0)) == {"ok": True, "alive": True}
    assert _peak_mib() - before < 40
    assert any(f"over {spawner.MAX_LINE} bytes" in r.getMessage() for r in caplog.records)
