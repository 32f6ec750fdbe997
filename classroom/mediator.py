"""A class member's server, started and signalled for the Hub, as that member: root's gate
(``classroom_enter``) runs this after entering the member's cgroup and network namespace and dropping
to their account. The protocol is sudospawner's mediator's — JSON on stdin (``spawn`` with ``args`` and
``env``, or ``kill`` with ``pid`` and ``signal``), JSON on stdout — without its imports: one copy of
it stays alive as long as the server, to carry its output into the member's log (capped) and reap
it, so it uses the standard library only and runs with
``python -I -S`` (sudospawner's, with tornado loaded, was ~49 MiB PSS per learner; this one ~5).

    python -I -S classroom/mediator.py SERVER_PROGRAM [--logging=LEVEL]
"""

from __future__ import annotations

import json
import os
import stat
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
    # the Hub's log, unbounded and unfiltered (review 19.5). Made anew at each start, through a pipe this
    # process reads, so that the log never passes MAX_LOG.
    log = open_log(os.path.expanduser("~"))
    os.dup2(log, 1)
    os.dup2(log, 2)
    out_r, out_w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.close(out_r)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
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
    os.close(out_w)
    with os.fdopen(w, "w") as out:
        _finish(result, out)
    pump(out_r, log, pid)  # and reap the server when it ends: this process's whole job from here
    os._exit(0)


MAX_LOG = 16 << 20  # bytes of the member's server log; then it starts again (saying so)


def open_log(home: str) -> int:
    """The member's server log in ``home``, a regular file of theirs, emptied. Anything else at its
    place (a FIFO, which would block the open, a link, a directory, a file with other names) is
    removed or moved aside, never followed or waited on; failing that, output goes nowhere."""
    path = os.path.join(home, SERVER_LOG)
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for _ in range(3):
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                if stat.S_ISDIR(st.st_mode):
                    os.rename(path, f"{path}.moved-{int(time.time())}")
                else:
                    os.unlink(path)
                continue
            fd = os.open(path, flags)
        except FileNotFoundError:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
        except OSError:
            break
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:  # still what was checked
            os.set_blocking(fd, True)
            os.ftruncate(fd, 0)
            os.fchmod(fd, 0o600)
            return fd
        os.close(fd)
    return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


def pump(r: int, log: int, pid: int, cap: int = MAX_LOG) -> None:
    """The server's output from ``r`` into ``log`` while the server ``pid`` runs (then what is left in
    the pipe), and reap it. The log never passes ``cap``: it starts again with a line saying so."""
    import select

    if not pid:  # it ended at once: what it wrote is in the pipe (anything it left running waits for no one)
        os.set_blocking(r, False)
    written = 0
    after = 1 << 20  # bytes still taken once the server ended (its orphans may write on: not for ever)
    while after > 0:
        if pid and os.waitpid(pid, os.WNOHANG)[0]:
            pid = 0
            os.set_blocking(r, False)
        elif pid and not select.select([r], [], [], 2.0)[0]:
            continue
        try:
            chunk = os.read(r, 65536)
        except BlockingIOError:
            chunk = b""
        if not chunk:
            if not pid:
                break
            pid = _reap(pid)  # every writer is gone: the server is ending
            continue
        if not pid:
            after -= len(chunk)
        try:
            if written + len(chunk) > cap:
                os.ftruncate(log, 0)
                os.lseek(log, 0, os.SEEK_SET)
                written = os.write(log, f"[the log reached {cap >> 20} MiB: it starts again here]\n".encode())
            written += os.write(log, chunk)
        except OSError:  # the member's disk is full, or the log is gone: output is dropped
            pass
    os.close(r)


def _reap(pid: int) -> int:
    if pid:
        os.waitpid(pid, 0)
    return 0


def not_dumpable() -> None:
    """No ptrace by the member's own processes (same uid: with no Yama that is allowed), no core: what
    this process writes back to the Hub is the mediator's, not something another process injects.
    ctypes costs about 0.5 MiB PSS; the server it starts is dumpable again (exec as the same user)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    not_dumpable()
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
