"""The classroom's spawner: SudoSpawner, except that the mediator is started through root's gate
(``sudo -n dockerlab-enter MEMBER spawner``: the member's cgroup, network namespace and account) and
each member's server listens on the port ``classroom up`` gave them, inside their namespace, where the
classroom's relay connects the Hub's proxy to it (``asroot.classroom_relay``).

What the mediator sends back is the member's to shape (it runs as them): the Hub keeps at most
:data:`MAX_REPLY` bytes of its reply and :data:`MAX_LINES` lines of :data:`MAX_LINE` bytes of its stderr,
printable characters only; more is one line in the Hub's log and the call fails (or stderr is closed)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sudospawner import SudoSpawner
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError, UnsatisfiableReadError
from tornado.process import Subprocess
from traitlets import Unicode

__all__ = ["MAX_LINE", "MAX_LINES", "MAX_REPLY", "ClassSpawner"]

MAX_REPLY = 64 << 10  # bytes of the mediator's JSON reply (a few dozen in practice)
MAX_LINES = 40  # lines of the mediator's stderr relogged per call (none when all is well)
MAX_LINE = 2000  # bytes of one such line
REPLY_SECONDS = 120.0  # the mediator answers within about a second (spawn waits 1 s to see the server live)


def printable(text: str) -> str:
    """``text`` without control characters (a member's bytes must not drive the Hub's terminal)."""
    return "".join(c if c.isprintable() else "?" for c in text)


class ClassSpawner(SudoSpawner):  # type: ignore[misc]
    enter_path = Unicode(help="root-owned gate sudo runs (asroot.classroom_enter)").tag(config=True)
    class_config = Unicode(help="the classroom's root-owned classroom.json (member -> port)").tag(config=True)

    def member_port(self) -> int:
        with open(self.class_config) as f:
            ports = json.load(f).get("member_ports", {})
        if self.user.name not in ports:
            raise RuntimeError(f"{self.user.name} has no port in {self.class_config}: run 'sudo ./lab classroom up'")
        return int(ports[self.user.name])

    async def start(self) -> tuple[str, int]:
        self.ip = "127.0.0.1"
        self.port = self.member_port()
        reply = await self.do(action="spawn", args=self.get_args(), env=self.get_env())
        self.pid = reply["pid"]
        return (self.ip, self.port)

    def command(self) -> list[str]:
        """The mediator's command line: root's gate, for this member."""
        cmd = ["sudo", "-n", self.enter_path, self.user.name, "spawner"]
        if self.mediator_log_level:
            cmd.append(f"--logging={self.mediator_log_level}")
        return cmd

    async def relog_stderr(self, stderr: Any) -> None:
        """The mediator's stderr into the Hub's log: at most :data:`MAX_LINES` lines of :data:`MAX_LINE`
        bytes, printable; then the stream is closed (a flood ends there, with one line saying so)."""
        name = self.user.name
        for _ in range(MAX_LINES):
            try:
                line = await stderr.read_until(b"\n", max_bytes=MAX_LINE)
            except (StreamClosedError, UnsatisfiableReadError) as e:  # tornado closes it on a line too long
                if isinstance(e, UnsatisfiableReadError) or isinstance(getattr(e, "real_error", None),
                                                                       UnsatisfiableReadError):
                    self.log.warning("the mediator of %s wrote a line over %d bytes: the rest of its stderr is "
                                     "dropped", name, MAX_LINE)
                return
            self.log.warning("mediator of %s: %s", name, printable(line.decode("utf8", "replace").rstrip("\n")))
        stderr.close()
        self.log.warning("the mediator of %s wrote over %d lines to stderr: the rest is dropped", name, MAX_LINES)

    async def _reply(self, stdout: Any) -> bytes:
        data = bytearray()
        try:
            while len(data) <= MAX_REPLY:
                data += await stdout.read_bytes(65536, partial=True)
        except StreamClosedError:
            pass
        return bytes(data)

    async def do(self, action: str, **kwargs: Any) -> dict[str, Any]:
        """As SudoSpawner's, through root's gate instead of ``sudo -u MEMBER``, with the reply and stderr
        capped (:data:`MAX_REPLY`, :data:`MAX_LINES`) and a time limit (:data:`REPLY_SECONDS`)."""
        kwargs["action"] = action
        p = Subprocess(self.command(), stdin=Subprocess.STREAM, stdout=Subprocess.STREAM, stderr=Subprocess.STREAM)
        stderr_future = self.relog_stderr(p.stderr)
        IOLoop.current().add_callback(lambda: stderr_future)
        await p.stdin.write(json.dumps(kwargs).encode("utf8"))
        p.stdin.close()
        name = self.user.name
        try:
            data = await asyncio.wait_for(self._reply(p.stdout), REPLY_SECONDS)
        except asyncio.TimeoutError:
            data, why = b"", f"no reply within {REPLY_SECONDS:.0f} s"
        else:
            why = f"a reply over {MAX_REPLY >> 10} KiB" if len(data) > MAX_REPLY else ""
        if why:
            self._end(p)
            self.log.error("the mediator of %s sent %s: %s not done", name, why, action)
            raise RuntimeError(f"the mediator of {name} sent {why}: {action} not done")
        if p.returncode or not data.strip():  # returncode: set only if the exit was seen already
            raise RuntimeError(f"the classroom's gate refused or failed (exit {p.returncode}) for {name}")
        text = data.decode("utf8", "replace")
        try:
            return dict(json.loads(text[text.index("{"): text.rindex("}") + 1]))
        except ValueError:
            self.log.error("no JSON from the mediator of %s: %r", name, printable(text[-300:]))
            raise

    @staticmethod
    def _end(p: Subprocess) -> None:
        """Stop listening to a mediator that floods or stalls (its pipes closed: its next write fails)."""
        for stream in (p.stdout, p.stderr):
            stream.close()
        try:
            p.proc.kill()
        except OSError:  # sudo runs as root: it may not be the hub's to signal
            pass
