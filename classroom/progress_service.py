"""The instructor's progress page: a JupyterHub service (``/services/progress/``) that shows, per
learner and chapter, which self-check exercises pass now. It runs as the hub account and asks each
learner's engine through root's gate (``sudo -n dockerlab-enter LEARNER progress``: ``classroom.progress`` as
the learner, in their network namespace), so the figures come from the learner's engine, not from anything their
kernel says. Only the instructor sees it.
Chinese by default, ``?lang=en`` for English; the page refreshes itself every 15 seconds.

What comes back runs as the learner (they could make it say anything): at most ``MAX_OUTPUT`` bytes are
read, only ``{chapter: {exercise: pass|fail|n/a}}`` with numbers for keys is kept, and a learner whose
answer is unusable shows no results, while the page shows everyone else's.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import time
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.ioloop import IOLoop

TEXT = {
    "zh": {"title": "学习进度", "learner": "学员", "server": "服务器", "running": "运行中", "stopped": "未运行",
           "pass": "通过", "fail": "未通过", "n/a": "只能在学员的内核里检查", "chapter": "第 {} 章",
           "note": "每 15 秒刷新；结果来自学员自己的 Docker 引擎，不是学员内核报告的。", "ex": "练习 {}",
           "none": "（引擎已停止）", "noanswer": "（引擎这次没有回答，下次刷新再问）",
           "unused": "（还没运行过 Docker 命令，引擎未启动）"},
    "en": {"title": "Progress", "learner": "Learner", "server": "Server", "running": "running", "stopped": "stopped",
           "pass": "passes", "fail": "not yet", "n/a": "checked in the learner's kernel only",
           "chapter": "Chapter {}", "note": "Refreshes every 15 s; results come from each learner's own Docker "
           "engine, not from their kernel.", "ex": "Exercise {}", "none": "(engine off)",
           "noanswer": "(no answer from the engine this time; asked again at the next refresh)",
           "unused": "(no Docker command yet: engine not started)"},
}
SAFE = {"pass": "pass", "fail": "fail", "n/a": "na"}  # CSS class per state
ENTER = os.environ.get("LAB_CLASS_ENTER", "/var/lib/dockerlab-classroom/bin/dockerlab-enter")  # root's gate
CACHE_SECONDS = 10.0
MAX_OUTPUT = 64 << 10
_NUMBER = re.compile(r"[0-9]{1,3}")
log = logging.getLogger("progress")
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


async def _hub_users() -> list[dict[str, Any]]:
    api = os.environ["JUPYTERHUB_API_URL"]
    req = HTTPRequest(url_path_join(api, "users"),
                      headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"})
    resp = await AsyncHTTPClient().fetch(req)
    return list(json.loads(resp.body))


async def learner_progress(name: str) -> dict[str, Any] | None:
    """One learner's exercises, from their engine (cached a few seconds: many instructors' tabs); None
    when the probe gave no answer in time or no valid one (not cached: the next refresh asks again)."""
    hit = _cache.get(name)
    if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    proc = await asyncio.create_subprocess_exec("sudo", "-n", ENTER, name, "progress", stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out: bytes | None = None
    data: dict[str, Any] | None = None
    try:
        out = await asyncio.wait_for(_read_capped(proc.stdout), 60)
        data = valid(json.loads(out or b"{}")) if out is not None else None
        if out is None:
            log.warning("progress of %s: more than %d bytes, ignored", name, MAX_OUTPUT)
    except asyncio.TimeoutError:
        log.warning("progress of %s: no answer in 60 s", name)
    except (ValueError, RecursionError):
        log.warning("progress of %s: not an answer", name)
    finally:
        await _end(proc, now=out is None)
    if data is not None:
        _cache[name] = (time.monotonic(), data)
    return data


async def _end(proc: asyncio.subprocess.Process, now: bool) -> None:
    """Wait for the progress run to end (``now``: stop it first: it said too much, or too slowly)."""
    try:
        if not now:
            await asyncio.wait_for(proc.wait(), 5)
            return
    except asyncio.TimeoutError:
        pass
    transport: asyncio.SubprocessTransport = getattr(proc, "_transport")  # noqa: B009 - asyncio keeps it private
    pipe = transport.get_pipe_transport(1)  # our end of its output: a writer blocked on it gets EPIPE
    if pipe is not None:
        pipe.close()
    try:
        proc.kill()  # sudo relays it
        await asyncio.wait_for(proc.wait(), 5)
    except (ProcessLookupError, PermissionError, asyncio.TimeoutError):
        pass


async def _read_capped(stream: asyncio.StreamReader | None) -> bytes | None:
    """Everything up to EOF, or None past ``MAX_OUTPUT`` bytes."""
    out = b""
    while stream is not None and (chunk := await stream.read(1 << 14)):
        out += chunk
        if len(out) > MAX_OUTPUT:
            return None
    return out


def valid(data: Any) -> dict[str, dict[str, str]]:
    """Only ``{chapter: {exercise: state}}`` of a learner's answer: numbered keys, known states.

    >>> valid({"1": {"2": "pass", "x": "pass", "3": ["no"]}, "y": {}, "4": "fail"})
    {'1': {'2': 'pass'}}
    >>> valid([1, 2])
    {}
    """
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for chapter, exercises in data.items():
        if isinstance(chapter, str) and _NUMBER.fullmatch(chapter) and isinstance(exercises, dict):
            good = {n: v for n, v in exercises.items()
                    if isinstance(n, str) and _NUMBER.fullmatch(n) and isinstance(v, str) and v in SAFE}
            if good:
                out[chapter] = good
    return out


async def snapshot() -> dict[str, Any]:
    users = [u for u in await _hub_users()
             if u["name"] != os.environ.get("LAB_CLASS_INSTRUCTOR") and not u.get("admin")]
    running = {u["name"]: bool(u.get("servers", {}).get("", {}).get("ready")) for u in users}
    names = sorted(running)
    results = await asyncio.gather(*(learner_progress(n) if running[n] else _empty() for n in names),
                                   return_exceptions=True)
    for n, r in zip(names, results):
        if isinstance(r, BaseException):
            log.error("progress of %s: %r", n, r)
    return {"learners": [{"name": n, "running": running[n], "exercises": r if isinstance(r, dict) else {},
                          "answered": isinstance(r, dict)} for n, r in zip(names, results)]}


async def _empty() -> dict[str, Any]:
    return {}


def render(data: dict[str, Any], lang: str) -> str:
    tx = TEXT.get(lang, TEXT["zh"])
    chapters = sorted({c for learner in data["learners"] for c in learner["exercises"]})
    numbers = {c: sorted({n for learner in data["learners"] for n in learner["exercises"].get(c, {})}, key=int)
               for c in chapters}
    head = "".join(f"<th colspan='{len(numbers[c])}'>{tx['chapter'].format(int(c))}</th>" for c in chapters)
    sub = "".join(f"<th>{tx['ex'].format(n)}</th>" for c in chapters for n in numbers[c])
    rows = []
    for learner in data["learners"]:
        cells = []
        for c in chapters:
            for n in numbers[c]:
                v = learner["exercises"].get(c, {}).get(n)
                mark = {"pass": "✔", "fail": "✘", "n/a": "—"}.get(v or "", "")
                cells.append(f"<td class='{SAFE.get(v or '', 'off')}' "
                             f"title='{html.escape(tx.get(v or '', ''))}'>{mark}</td>")
        state = tx["stopped"] + " " + tx["none"] if not learner["running"] \
            else tx["running"] + " " + tx["noanswer"] if not learner.get("answered", True) \
            else tx["running"] if learner["exercises"] else tx["running"] + " " + tx["unused"]
        rows.append(f"<tr><th>{html.escape(learner['name'])}</th><td>{state}</td>{''.join(cells)}</tr>")
    other = "en" if lang != "en" else "zh"
    return f"""<!doctype html><html lang="{'zh-CN' if lang != 'en' else 'en'}"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="15"><title>{tx['title']}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} td.pass{{background:#dafbe1}} td.fail{{background:#ffebe9}}
td.na{{color:#666}} td{{text-align:center}} .legend{{color:#444}}</style></head><body><h1>{tx['title']}</h1>
<p>{tx['note']} <a href="?lang={other}">{'English' if other == 'en' else '中文'}</a></p>
<table id="progress"><tr><th rowspan="2">{tx['learner']}</th><th rowspan="2">{tx['server']}</th>{head}</tr>
<tr>{sub}</tr>{''.join(rows)}</table>
<p class="legend">✔ {tx['pass']} · ✘ {tx['fail']} · — {tx['n/a']}</p></body></html>"""


class ProgressPage(HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]
    @web.authenticated
    async def get(self) -> None:
        user = self.get_current_user()
        if user.get("name") != os.environ.get("LAB_CLASS_INSTRUCTOR"):
            raise web.HTTPError(403, "the progress page is for the class's instructor")
        data = await snapshot()
        if self.get_argument("format", "") == "json":
            self.write(data)
            return
        self.write(render(data, self.get_argument("lang", "zh")))


def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    app = web.Application([
        (prefix, ProgressPage),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    IOLoop.current().start()


if __name__ == "__main__":
    main()
