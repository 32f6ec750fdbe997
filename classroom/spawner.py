"""The classroom's spawner: SudoSpawner, except that the mediator is started through root's gate
(``sudo -n dockerlab-enter MEMBER spawner``: the member's cgroup, network namespace and account) and
each member's server listens on the port ``classroom up`` gave them, inside their namespace, where the
classroom's relay connects the Hub's proxy to it (``asroot.classroom_relay``)."""

from __future__ import annotations

import json
from typing import Any

from sudospawner import SudoSpawner
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.process import Subprocess
from traitlets import Unicode

__all__ = ["ClassSpawner"]


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

    async def do(self, action: str, **kwargs: Any) -> dict[str, Any]:
        """As SudoSpawner's, through root's gate instead of ``sudo -u MEMBER``."""
        kwargs["action"] = action
        cmd = ["sudo", "-n", self.enter_path, self.user.name, "spawner"]
        if self.mediator_log_level:
            cmd.append(f"--logging={self.mediator_log_level}")
        p = Subprocess(cmd, stdin=Subprocess.STREAM, stdout=Subprocess.STREAM, stderr=Subprocess.STREAM)
        stderr_future = self.relog_stderr(p.stderr)
        IOLoop.current().add_callback(lambda: stderr_future)
        await p.stdin.write(json.dumps(kwargs).encode("utf8"))
        p.stdin.close()
        try:
            data = await p.stdout.read_until_close()
        except StreamClosedError:
            data = b""
        if p.returncode or not data.strip():  # returncode: set only if the exit was seen already
            raise RuntimeError(f"the classroom's gate refused or failed (exit {p.returncode}) for {self.user.name}")
        text = data.decode("utf8", "replace")
        try:
            return dict(json.loads(text[text.index("{"): text.rindex("}") + 1]))
        except ValueError:
            self.log.error("no JSON from the mediator of %s: %r", self.user.name, text[-300:])
            raise
