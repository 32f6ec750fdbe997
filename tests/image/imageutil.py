"""Helpers for the course image's test: a throwaway rootful engine that plays Docker Desktop's
role, the docker CLI against it, and a Jupyter kernel driven over JupyterLab's own REST and
websocket API (what the browser uses)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["CHECK_STARTS", "CLI", "LEARNER_COMMAND", "NOTEBOOK", "Docker", "JupyterServer", "chapter1_cells",
           "first_exercise", "wait_for_url"]

NOTEBOOK = "notebooks/01-what-is-docker.ipynb"
LEARNER_COMMAND = "!docker run -d --name ch01-box busybox:1.35 sleep 600"
CHECK_STARTS = ('checks.container("ch01-box"', 'checks.ex(1).container("ch01-box"')  # chapter 1's first check

# Debian's docker.io CLI (./lab installs it), the one made for the rootful engine that plays Docker Desktop:
# not whichever `docker` comes first on this machine's PATH
CLI = "/usr/bin/docker"
URL_LINE = re.compile(r"JupyterLab: (http://127\.0\.0\.1:8888/\S+\?token=([0-9a-f]+))")


@dataclass
class Docker:
    host: str  # unix:///... of the throwaway engine

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([CLI, "-H", self.host, *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr.strip()[-2000:]}")
        return r


def wait_for_url(docker: Docker, container: str, since_lines: int = 0, timeout: float = 420) -> tuple[str, float]:
    """The token the container printed after ``since_lines`` lines of its log, and the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        logs = docker("logs", container, check=False)
        lines = (logs.stdout + logs.stderr).splitlines()
        for line in lines[since_lines:]:
            m = URL_LINE.search(line)
            if m:
                return m.group(2), time.monotonic() - t0
        state = docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip()
        if state != "true":
            raise AssertionError("the course container exited:\n" + "\n".join(lines[-40:]))
        time.sleep(1)
    raise AssertionError(f"no JupyterLab URL after {timeout:.0f} s:\n" + "\n".join(lines[-40:]))


@dataclass
class JupyterServer:
    port: int
    token: str
    host: str = "127.0.0.1"

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
        return json.loads(text) if text else None

    def status(self) -> int:
        try:
            req = urllib.request.Request(f"{self.base}/api/status", headers={"Authorization": f"token {self.token}"})
            with urllib.request.urlopen(req, timeout=3) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    def start_kernel(self, notebook: str) -> str:
        """A session on ``notebook`` with the server's default kernel (the course's): the kernel id."""
        s = self.api("POST", "/api/sessions", {"path": notebook, "type": "notebook", "name": "",
                                               "kernel": {"name": "dockerlab"}})
        return str(s["kernel"]["id"])

    def execute(self, kernel: str, codes: list[str], timeout: float = 300) -> list[str]:
        """Run each code in turn in the kernel; each one's text output (stdout, results, errors)."""
        return asyncio.run(self._execute(kernel, codes, timeout))

    async def _execute(self, kernel: str, codes: list[str], timeout: float) -> list[str]:
        from tornado.websocket import websocket_connect

        ws = await websocket_connect(f"ws://{self.host}:{self.port}/api/kernels/{kernel}/channels?token={self.token}")
        session, outs = uuid.uuid4().hex, []
        try:
            for code in codes:
                msg_id = uuid.uuid4().hex
                await ws.write_message(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                               "username": "test", "version": "5.3", "date": ""},
                    "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                    "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                "allow_stdin": False, "stop_on_error": True}}))
                text, idle, replied = [], False, False
                deadline = time.monotonic() + timeout
                while not (idle and replied):
                    raw = await asyncio.wait_for(ws.read_message(), max(1.0, deadline - time.monotonic()))
                    if raw is None:
                        raise AssertionError("the kernel's websocket closed")
                    msg = json.loads(raw)
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind, content = msg["msg_type"], msg["content"]
                    if kind == "stream":
                        text.append(content["text"])
                    elif kind in ("execute_result", "display_data"):
                        text.append(content["data"].get("text/plain", ""))
                    elif kind == "error":
                        text.append(f"{content['ename']}: {content['evalue']}")
                    elif kind == "status" and content["execution_state"] == "idle":
                        idle = True
                    elif kind == "execute_reply":
                        replied = True
                outs.append("".join(text))
        finally:
            ws.close()
        return outs


def chapter1_cells(server: JupyterServer) -> tuple[list[str], str]:
    """Chapter 1's two set-up cells and its first exercise's check cell, as the server holds them."""
    nb = server.api("GET", f"/api/contents/{NOTEBOOK}")
    cells = [c["source"] for c in nb["content"]["cells"]]
    check = next(s for s in cells if s.startswith(CHECK_STARTS))
    setup = [s for s in cells if s.startswith("%load_ext kernel_ext") or "exercises.start(lab" in s]
    assert len(setup) == 2, "chapter 1's set-up cells are not where the test expects them"
    return setup, check


def first_exercise(server: JupyterServer) -> tuple[str, str, str]:
    """Chapter 1's set-up cells, then its first exercise's check before and after the learner's
    command, in the course kernel: (check before, check after, ``user uid`` of the kernel)."""
    setup, check = chapter1_cells(server)
    kernel = server.start_kernel(NOTEBOOK)
    outs = server.execute(kernel, [*setup, check, LEARNER_COMMAND, check,
                                   "import getpass, os; print(getpass.getuser(), os.getuid())"])
    return outs[2], outs[4], outs[5]
