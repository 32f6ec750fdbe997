"""A class member as seen from outside, through the Hub's REST API and a kernel's websocket — what a
browser does, without one: log in, start the server, get a token, run code in a kernel. Used by the
classroom's tests and its load test (``bench/bench_classroom.py``)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

__all__ = ["KernelChannel", "Member", "RunResult", "resolve_localhost_names"]

_getaddrinfo = socket.getaddrinfo


def _loopback_for_localhost(host, *args, **kw):  # type: ignore[no-untyped-def]
    if isinstance(host, (str, bytes)) and (host.decode() if isinstance(host, bytes) else host).endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kw)


def resolve_localhost_names() -> None:
    """Every ``*.localhost`` name to 127.0.0.1 in this process, as browsers do by themselves (RFC 6761
    6.3; Chromium, Firefox): the classroom serves each member from ``<name>.localhost``, and glibc
    resolves ``localhost`` alone unless nss-myhostname is installed."""
    socket.getaddrinfo = _loopback_for_localhost


@dataclass
class RunResult:
    status: str  # "ok", "error", or "died" (the kernel was killed, e.g. by its memory limit)
    stdout: str
    stderr: str
    data: list[dict[str, Any]] = field(default_factory=list)  # display_data / execute_result bundles
    error: str = ""
    seconds: float = 0.0

    @property
    def text(self) -> str:
        plain = "".join(d.get("text/plain", "") for d in self.data)
        return self.stdout + self.stderr + plain


@dataclass
class Member:
    base: str  # the Hub's URL, e.g. http://127.0.0.1:8000
    name: str
    password: str
    session: requests.Session = field(default_factory=requests.Session)
    token: str = ""
    spawn_seconds: float = 0.0
    server: str = ""  # the server's URL as the Hub gives it (its own origin with subdomain_host), "/" last

    def __post_init__(self) -> None:
        resolve_localhost_names()

    @property
    def server_url(self) -> str:
        return (self.server or f"{self.base}/user/{self.name}/").rstrip("/")

    def login(self) -> bool:
        """True if the Hub accepted the name and password (and so started the server)."""
        s = self.session
        s.get(f"{self.base}/hub/login", timeout=30)
        r = s.post(f"{self.base}/hub/login", data={"username": self.name, "password": self.password,
                                                   "_xsrf": s.cookies.get("_xsrf", "")},
                   timeout=120)
        return r.status_code == 200 and "/hub/login" not in r.url

    _xsrf: str = ""

    def _hub(self, method: str, path: str, **kw: Any) -> requests.Response:
        """The Hub's REST API with the login cookie; its XSRF token is the one the Hub's pages carry."""
        if not self._xsrf:
            import re

            page = self.session.get(f"{self.base}/hub/home", timeout=60).text
            m = re.search(r'xsrf_token:\s*"([^"]+)"', page)
            self._xsrf = m.group(1) if m else ""
        headers = {"X-XSRFToken": self._xsrf}
        return self.session.request(method, f"{self.base}/hub/api{path}", headers=headers, timeout=60, **kw)

    def start(self, timeout: float = 300) -> float:
        """Start (or wait for) the member's server; seconds until ready."""
        t0 = time.monotonic()
        r = self._hub("POST", f"/users/{self.name}/server")
        if r.status_code not in (201, 202, 400):  # 400: already running or pending
            raise RuntimeError(f"spawn of {self.name}: {r.status_code} {r.text[:200]}")
        while time.monotonic() - t0 < timeout:
            u = self._hub("GET", f"/users/{self.name}").json()
            srv = u.get("servers", {}).get("", {})
            if srv.get("ready"):
                url = str(srv.get("url") or "")
                self.server = url if "://" in url else self.base + url
                self.spawn_seconds = time.monotonic() - t0
                return self.spawn_seconds
            time.sleep(0.5)
        raise TimeoutError(f"the server of {self.name} was not ready within {timeout:.0f} s")

    def stop(self) -> None:
        self._hub("DELETE", f"/users/{self.name}/server")

    def make_token(self) -> str:
        r = self._hub("POST", f"/users/{self.name}/tokens", json={"note": "dockerlab test", "expires_in": 3600})
        r.raise_for_status()
        self.token = r.json()["token"]
        return self.token

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        """The member's own JupyterLab server's REST API (``/user/NAME/api/...``)."""
        if not self.token:
            self.make_token()
        return requests.request(method, f"{self.server_url}/api{path}",
                                headers={"Authorization": f"token {self.token}"}, timeout=60, **kw)

    def terminal(self, command: str, until: str, timeout: float = 60) -> str:
        """Type ``command`` into a new JupyterLab terminal, as a learner does; its output until ``until``
        shows (give a marker the typed line itself does not contain, e.g. ``echo DONE$((1+1))``)."""
        r = self.api("POST", "/terminals")
        r.raise_for_status()
        name = str(r.json()["name"])
        try:
            return asyncio.run(self._terminal(name, command, until, timeout))
        finally:
            self.api("DELETE", f"/terminals/{name}")

    async def _terminal(self, name: str, command: str, until: str, timeout: float) -> str:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws_base = self.server_url.replace("http", "ws", 1)
        conn = await websocket_connect(HTTPRequest(f"{ws_base}/terminals/websocket/{name}",
                                                   headers={"Authorization": f"token {self.token}"}))
        conn.write_message(json.dumps(["stdin", command + "\r"]))
        out, deadline = "", time.monotonic() + timeout
        while until not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                raw = await asyncio.wait_for(conn.read_message(), left)
            except asyncio.TimeoutError:
                break
            if raw is None:
                break
            msg = json.loads(raw)
            if msg and msg[0] == "stdout":
                out += str(msg[1])
        conn.close()
        return out

    def kernel(self, name: str = "dockerlab") -> str:
        r = self.api("POST", "/kernels", json={"name": name})
        r.raise_for_status()
        return str(r.json()["id"])

    def run(self, kernel_id: str, code: str, timeout: float = 120) -> RunResult:
        """Execute ``code`` in the kernel (on a websocket of its own) and collect its output until the
        kernel is idle again."""
        channel = self.channel(kernel_id)
        try:
            return channel.run(code, timeout)
        finally:
            channel.close()

    def channel(self, kernel_id: str) -> KernelChannel:
        """A kernel's websocket kept open for many cells, as a browser's JupyterLab keeps one per open
        notebook (opening one costs the server a kernel-info round trip each time)."""
        if not self.token:
            self.make_token()
        return KernelChannel(self, kernel_id)


class KernelChannel:
    """One websocket to one kernel, with an event loop of its own: use it from one thread."""

    def __init__(self, member: Member, kernel_id: str) -> None:
        self.member, self.kernel_id = member, kernel_id
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None

    async def _connect(self) -> Any:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        m = self.member
        ws_base = m.server_url.replace("http", "ws", 1)
        req = HTTPRequest(f"{ws_base}/api/kernels/{self.kernel_id}/channels",
                          headers={"Authorization": f"token {m.token}"})
        return await websocket_connect(req)

    def run(self, code: str, timeout: float = 120) -> RunResult:
        return self.loop.run_until_complete(self._run(code, timeout))

    def close(self) -> None:
        if self.conn is not None:
            self.loop.run_until_complete(self._close())
        self.loop.close()

    async def _close(self) -> None:
        self.conn.close()  # tornado writes the close frame on the loop the connection belongs to
        self.conn = None
        await asyncio.sleep(0)

    async def _run(self, code: str, timeout: float) -> RunResult:
        t0 = time.monotonic()
        if self.conn is None:
            self.conn = await self._connect()
        conn = self.conn
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": self.member.name, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out = RunResult("ok", "", "")
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the cell did not finish within {timeout:.0f} s: {code[:60]!r}")
            raw = await asyncio.wait_for(conn.read_message(), left)
            if raw is None:
                self.conn = None
                raise ConnectionError("the kernel's websocket closed")
            msg = json.loads(raw)
            kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
            if kind == "status" and msg.get("content", {}).get("execution_state") in ("restarting", "dead"):
                out.status, out.error = "died", "the kernel died (restarting)"
                break
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    out.stdout += content["text"]
                else:
                    out.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                out.data.append(content["data"])
            elif kind == "error":
                out.status, out.error = "error", f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        out.seconds = time.monotonic() - t0
        return out
