"""A class member's server, started and signalled for the Hub, as that member: root's gate
(``classroom_enter``) runs this after entering the member's cgroup and network namespace and dropping
to their account. The protocol is sudospawner's mediator's — JSON on stdin (``spawn`` with ``args`` and
``env``, or ``kill`` with ``pid`` and ``signal``), JSON on stdout — without its imports: one copy of
it stays alive as long as the server, to reap it, so it uses the standard library only and runs with
``python -I -S`` (sudospawner's, with tornado loaded, was ~49 MiB PSS per learner; this one ~5).

    python -I -S classroom/mediator.py SERVER_PROGRAM [--logging=LEVEL]
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

__all__ = ["main"]


def _finish(data: dict[str, Any], fp: Any = None) -> None:
    fp = fp or sys.stdout
    json.dump(data, fp)
    fp.flush()


SERVER_LOG = ".dockerlab-server.log"  # in the member's home: their server's, kernels' and terminals' output


def kill(pid: int, signal: int) -> None:
    try:
        os.kill(pid, signal)
        alive = True
    except OSError:  # gone, or a pid another process took since (as sudospawner treats it)
        alive = False
    _finish({"ok": True, "alive": alive})


def spawn(program: str, args: list[str], env: dict[str, str]) -> None:
    env = {k: str(v) for k, v in env.items() if k != "PYTHONPATH"}  # as sudospawner: never from the Hub
    if "XDG_RUNTIME_DIR" in os.environ:  # root's gate made it for this member: not the Hub's to choose
        env["XDG_RUNTIME_DIR"] = os.environ["XDG_RUNTIME_DIR"]
    r, w = os.pipe()
    if os.fork():  # the caller's side: relay the result, then return (the Hub's sudo exits)
        os.close(w)
        with os.fdopen(r) as f:
            sys.stdout.write(f.read())
        sys.stdout.flush()
        return
    os.close(r)
    os.setpgrp()  # the Hub's signals to its own group do not reach the server
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    # The server's output (and its kernels' and terminals', which inherit it) goes to a log of the
    # member's own, never to the Hub's: whatever a learner's code writes to fd 2 would otherwise land in
    # the Hub's log, unbounded and unfiltered (review 19.5). Made anew at each start.
    try:
        log = os.open(os.path.expanduser(f"~/{SERVER_LOG}"),
                      os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        log = os.open(os.devnull, os.O_WRONLY)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(os.path.expanduser("~"))
                os.execve(program, [program, *args], env)
            finally:
                os._exit(127)
    except OSError as e:
        result: dict[str, Any] = {"ok": False, "error": str(e)}
        pid = 0
    else:
        result = {"ok": True, "pid": pid}
        deadline = time.monotonic() + 1.0  # a server that dies at once is reported, as sudospawner does
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                result = {"ok": False, "error": f"Exited with status: {os.waitstatus_to_exitcode(status)}"}
                pid = 0
                break
            time.sleep(0.05)
    with os.fdopen(w, "w") as out:
        _finish(result, out)
    if pid:
        os.waitpid(pid, 0)  # reap the server when it ends: this process's whole job from here
    os._exit(0)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: classroom/mediator.py SERVER_PROGRAM [--logging=LEVEL]", file=sys.stderr)
        return 2
    program = argv[0]
    try:
        kwargs = json.load(sys.stdin)
        action = kwargs.pop("action")
    except (ValueError, KeyError, AttributeError):
        print("the mediator expects sudospawner's JSON on stdin", file=sys.stderr)
        return 1
    if action == "kill":
        kill(int(kwargs["pid"]), int(kwargs["signal"]))
    elif action == "spawn":
        spawn(program, [str(a) for a in kwargs.get("args", [])], dict(kwargs.get("env", {})))
    else:
        print("action must be 'spawn' or 'kill'", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
