"""Checks for the chapters' exercises that read the engine's state and know the usual mistakes.

A chapter's setup cell makes one :class:`Exercises` (``checks = exercises.start(lab)``); it notes when the
learner arrived, so a container made before that (a leftover of an earlier visit, which the reset
does not remove when the learner made it in a terminal) does not pass. Each check returns a
:class:`~kernel_ext.check.CheckResult`: ✔ with what it found, or ✘ with what it found, ``→``, and
what to do next.

A check cell names its exercise, ``checks.ex(1).container(...)``: the hint after ``→`` then comes in
tiers (AUTHORING.md, "Hints, recap and 常见报错"). When the check recognises a usual mistake it says
what to change; otherwise (nothing made yet, or a step that would name the answer) the exercise's own
hint takes its place: the nudge (``hint.chNN.exK.1``) on the first failed check, the command's shape
(``hint.chNN.exK.2``) from the second on. The full answer is never printed: it waits in the notebook's
``<details>`` ✓ 参考答案.

>>> checks = start(lab, "01")                                                 # doctest: +SKIP
>>> checks.ex(1).container("ch01-box", image="busybox:1.35", running=True, command="sleep")  # doctest: +SKIP
✘ 没有名为 ch01-box 的容器 → 要一个在后台一直运行的容器：想想哪个选项给容器起名，哪个让它在后台运行
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import docker.errors

from .check import CheckResult
from .messages import t
from .names import own
from .progress import Progress
from .progress import default as default_progress

__all__ = ["OPEN", "Exercises", "start"]

_HINT = "hint.ch{chapter}.ex{number}.{tier}"  # the catalogue's hints: tier 1 the nudge, 2 the shape
_AUTO_NAME = re.compile(r"^[a-z]+_[a-z]+\d*$")  # the names the engine makes up (festive_einstein)

# Learner-facing texts: the ex.* keys of kernel_ext's catalogue (kernel_ext/locale/*/kernel_ext.po).


# Reasons that say what the engine shows and no next step: either the learner has not made the thing
# yet or the step would name the answer. An exercise's hint tier supplies the step (Exercises.ex).
OPEN = frozenset({
    "ex.ctr.missing", "ex.file.missing", "ex.img.missing", "ex.img.other_tag", "ex.img.same_as",
    "ex.img.tag_of", "ex.img.nofile", "ex.img.content", "ex.img.notpulled", "ex.rm.none", "ex.vol.missing",
    "ex.vol.nofile", "ex.json.missing", "ex.own.none",
})


def _r(ok: bool, key: str, **kw: Any) -> CheckResult:
    return CheckResult(ok, t(key, **kw), key=key)


class _Attempt:
    """The checks of one exercise: each failed check counts, and the reason carries the hint's tier."""

    def __init__(self, owner: Exercises, number: int) -> None:
        self._owner, self._number = owner, number

    def __getattr__(self, name: str) -> Any:
        check = getattr(self._owner, name)

        def run(*args: Any, **kwargs: Any) -> CheckResult:
            # the book's names the learner's own objects hold: the course's own names (kernel_ext.names)
            args = tuple(own(a) if isinstance(a, str) else a for a in args)
            kwargs = {k: own(v) if isinstance(v, str) else v for k, v in kwargs.items()}
            return self._owner.graded(self._number, check(*args, **kwargs))

        return run


def _short(ref: str) -> str:
    """``docker.io/library/nginx:latest`` -> ``nginx:latest``."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    return ref


def _norm(ref: str) -> str:
    ref = _short(ref)
    return ref if ":" in ref.rsplit("/", 1)[-1] or "@" in ref else f"{ref}:latest"


def _when(iso: str) -> float:
    """An engine time stamp (RFC 3339, nanoseconds) in seconds since the epoch."""
    head, _, frac = iso.rstrip("Z").partition(".")
    tz = "+00:00" if iso.endswith("Z") else ""
    if frac and not iso.endswith("Z"):  # an offset after the fraction
        m = re.match(r"(\d+)(.*)", frac)
        frac, tz = (m.group(1), m.group(2)) if m else (frac, "")
    return datetime.fromisoformat(f"{head}{tz or '+00:00'}").timestamp() + float(f"0.{frac or 0}")


class Exercises:
    """The checks of one chapter's exercises; ``since``: when the learner opened the chapter."""

    def __init__(self, lab: Any, since: float | None = None, chapter: str = "",
                 progress: Progress | None = None) -> None:
        self.lab, self.api = lab, lab.api
        self.progress = progress  # where a pass is remembered (kernel_ext.progress); None: the lab home's
        self.since = time.time() if since is None else since
        self.chapter = chapter  # "03": the hints are hint.ch03.exK.1 / .2
        self.failures: dict[int, int] = {}  # exercise -> failed checks so far
        self.passed: set[int] = set()

    # -- hints in tiers --------------------------------------------------------------------------
    def ex(self, number: int) -> Any:
        """Exercise ``number``'s checks: ``checks.ex(2).pulled("busybox:1.35")``."""
        return _Attempt(self, number)

    def hint(self, number: int, tier: int) -> str:
        """Exercise ``number``'s hint: tier 1 the nudge, tier 2 the command's shape and where the answer is."""
        text = t(_HINT.format(chapter=self.chapter, number=number, tier=min(max(tier, 1), 2)))
        return text if tier <= 1 else text + t("ex.hint.answer")

    def graded(self, number: int, result: CheckResult) -> CheckResult:
        """``result`` as exercise ``number``'s verdict: a pass is noted; a failure counts and, when the
        check has no step of its own (:data:`OPEN`), takes the hint of its tier."""
        if result.ok:
            self.passed.add(number)
            (self.progress or default_progress()).passed(self.chapter, number)  # survives restarts
            return result
        self.failures[number] = tier = self.failures.get(number, 0) + 1
        tier = min(tier, 2)
        if result.key in OPEN or " → " not in result.reason:
            found = result.reason.split(" → ", 1)[0]
            return CheckResult(False, f"{found} → {self.hint(number, tier)}", key=result.key, tier=tier)
        return CheckResult(False, result.reason, key=result.key, tier=tier)

    def __repr__(self) -> str:
        return f"<Exercises since={time.strftime('%H:%M:%S', time.localtime(self.since))}>"

    # -- helpers ---------------------------------------------------------------------------------
    def _inspect(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.api.inspect_container(name))
        except docker.errors.NotFound:
            return None

    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self.api.inspect_image(ref)["Id"])
        except docker.errors.NotFound:
            return None

    def _others(self, image_id: str | None) -> list[dict[str, Any]]:
        """Containers made since the chapter began, from this image, with a name the engine made up."""
        out = []
        for c in self.api.containers(all=True):
            name = c["Names"][0].lstrip("/")
            if c.get("ImageID") == image_id and _AUTO_NAME.match(name) and c["Created"] >= int(self.since):
                out.append({"name": name, **c})
        return out

    def _page(self, url: str, wait: float = 8.0) -> tuple[str | None, str]:
        """The page at ``url`` (polled until it answers or ``wait`` runs out), or the reason it did not."""
        deadline, why = time.monotonic() + wait, ""
        while True:
            try:
                with urllib.request.urlopen(url, timeout=3) as r:
                    return r.read().decode(errors="replace"), ""
            except OSError as e:
                why = str(getattr(e, "reason", e))[:60]
            if time.monotonic() > deadline:
                return None, why
            time.sleep(0.3)

    def _exec(self, info: dict[str, Any], cmd: list[str]) -> tuple[int, str]:
        ex = self.api.exec_create(info["Id"], cmd)
        out = self.api.exec_start(ex["Id"]).decode(errors="replace")
        return int(self.api.exec_inspect(ex["Id"])["ExitCode"] or 0), out

    def all(self, *results: CheckResult) -> CheckResult:
        """One verdict for several checks: the first that failed, else all their reasons."""
        for r in results:
            if not r.ok:
                return r
        return CheckResult(True, "；".join(r.reason for r in results), key="ex.ok")

    # -- containers --------------------------------------------------------------------------------
    def container(self, name: str, image: str | None = None, running: bool | None = True,
                  command: str | None = None, hostname: str | None = None, memory_mib: int | None = None,
                  port: int | None = None, page: str | None = None, logs: str | None = None,
                  exec_: tuple[list[str], str] | None = None) -> CheckResult:
        """The container ``name``, made since the chapter began, from ``image``; running (True), stopped
        after running (False) or either (None); and whatever else is given: its command contains
        ``command``, its host name, memory limit, container ``port`` published to the host with
        ``page`` in the page served there, ``logs`` in its output, ``exec_ = (argv, expected)``."""
        info = self._inspect(name)
        want_id = self._image_id(image) if image else None
        if info is None:
            for other in self._others(want_id) if want_id else []:
                return _r(False, "ex.ctr.unnamed", name=name, image=image, other=other["name"])
            return _r(False, "ex.ctr.missing", name=name)
        if _when(info["Created"]) < self.since:
            return _r(False, "ex.ctr.old", name=name)
        cfg, st, host = info["Config"], info["State"], info["HostConfig"]
        if image and info["Image"] != want_id:
            return _r(False, "ex.ctr.image", name=name, actual=_short(cfg.get("Image") or info["Image"][:19]),
                      want=image)
        cmd = " ".join([*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])])
        status = st["Status"]
        if running is not None and status == "created":
            return _r(False, "ex.ctr.created", name=name)
        if running and status != "running":
            if st.get("ExitCode"):
                return self._failed(name, st)
            return _r(False, "ex.ctr.exited", name=name, code=st.get("ExitCode", 0), cmd=cmd)
        if running is False and status in ("running", "paused", "restarting"):
            return _r(False, "ex.ctr.running", name=name)
        if command and command not in cmd:
            return _r(False, "ex.ctr.cmd", name=name, cmd=cmd, want=command)
        if running is None and st.get("ExitCode"):
            return self._failed(name, st)
        if hostname and cfg.get("Hostname") != hostname:
            return _r(False, "ex.ctr.hostname", name=name, actual=cfg.get("Hostname"), want=hostname)
        if memory_mib is not None:
            mem = int(host.get("Memory") or 0)
            if not mem:
                return _r(False, "ex.ctr.nomem", name=name, want=memory_mib)
            if mem != memory_mib * 1024 * 1024:
                return _r(False, "ex.ctr.mem", name=name, actual=mem, mib=round(mem / 2**20, 2), want=memory_mib)
        if logs is not None:
            out = self.api.logs(info["Id"]).decode(errors="replace")
            if logs not in out:
                return _r(False, "ex.ctr.logs", name=name, want=logs)
        if port is not None:
            r = self._published(name, info, port, page)
            if r is not None:
                return r
        if exec_ is not None:
            code, out = self._exec(info, exec_[0])
            if exec_[1] not in out:
                return _r(False, "ex.ctr.exec", name=name, cmd=" ".join(exec_[0]), got=out.strip()[:60], want=exec_[1])
        return _r(True, "ex.ctr.ok", name=name, state=status, image=_short(cfg.get("Image") or ""))

    def _failed(self, name: str, st: dict[str, Any]) -> CheckResult:
        lines = self.api.logs(name).decode(errors="replace").strip().splitlines()
        return _r(False, "ex.ctr.failed", name=name, code=st.get("ExitCode"), last=(lines or ["—"])[-1][:80])

    def _published(self, name: str, info: dict[str, Any], port: int, page: str | None) -> CheckResult | None:
        ports = {k: v for k, v in (info["NetworkSettings"].get("Ports") or {}).items() if v}
        if not ports:
            return _r(False, "ex.ctr.noport", name=name, port=port)
        binding = ports.get(f"{port}/tcp")
        if not binding:
            return _r(False, "ex.ctr.port", name=name, actual=", ".join(k.split("/")[0] for k in ports), port=port)
        if page is None:
            return None
        ip = binding[0]["HostIp"] if binding[0]["HostIp"] not in ("", "0.0.0.0", "::") else "127.0.0.1"
        url = f"http://{ip}:{binding[0]['HostPort']}/"
        body, why = self._page(url)
        if body is None:
            return _r(False, "ex.ctr.down", name=name, url=url, why=why)
        if page not in body:
            got = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()[:60]
            return _r(False, "ex.ctr.page", name=name, url=url, want=page, got=got)
        return None

    def file_in_container(self, name: str, path: str, content: str) -> CheckResult:
        """``path`` with ``content`` in the writable layer of the running container ``name``."""
        info = self._inspect(name)
        if info is None:
            return _r(False, "ex.ctr.missing", name=name)
        if info["State"]["Status"] != "running":
            return _r(False, "ex.file.notrunning", name=name, state=info["State"]["Status"])
        code, out = self._exec(info, ["cat", path])
        if code != 0:
            for c in self.api.containers():
                other = c["Names"][0].lstrip("/")
                if other != name and any(d["Path"] == path for d in self.api.diff(c["Id"]) or []):
                    return _r(False, "ex.file.elsewhere", name=name, path=path, other=other)
            return _r(False, "ex.file.missing", name=name, path=path)
        if content not in out:
            return _r(False, "ex.file.content", name=name, path=path, got=out.strip()[:40], want=content)
        kind = next(("CAM"[d["Kind"]] for d in self.api.diff(info["Id"]) or [] if d["Path"] == path), "A")
        return _r(True, "ex.file.ok", name=name, path=path, kind=kind)

    def ran_with_rm(self, name: str, image: str) -> CheckResult:
        """A container ``name`` from ``image`` ran since the chapter began and the engine removed it as
        soon as it stopped (``--rm``): its events are create (of ``image``), start, die, destroy, and the
        destroy follows the die within :attr:`AUTO_REMOVED` seconds. A ``docker rm`` typed by hand comes
        later than that (the one case this cannot tell apart: a script that runs ``docker rm`` at once)."""
        info = self._inspect(name)
        if info is not None:
            return _r(False, "ex.rm.left", name=name, state=info["State"]["Status"])
        runs = self._lives(name)
        if not runs:
            return _r(False, "ex.rm.none", name=name)
        life = runs[-1]  # the latest container of that name
        if _norm(life.get("image", "")) != _norm(image):
            return _r(False, "ex.rm.image", name=name, actual=_short(life.get("image", "?")), want=image)
        if "start" not in life:
            return _r(False, "ex.rm.notrun", name=name)
        if life["destroy"] - life.get("die", life["destroy"]) > self.AUTO_REMOVED:
            return _r(False, "ex.rm.byhand", name=name)
        return _r(True, "ex.rm.ok", name=name)

    AUTO_REMOVED = 5.0  # seconds between die and destroy below which the engine removed it (--rm)

    def _lives(self, name: str) -> list[dict[str, Any]]:
        """The containers named ``name`` destroyed since the chapter began: per container, the time of
        each of its events (``create``, ``start``, ``die``, ``destroy``) and its ``image``."""
        events = self.api.events(since=int(self.since), until=int(time.time()) + 1, decode=True,
                                 filters={"type": "container"})
        by_id: dict[str, dict[str, Any]] = {}
        for e in events:
            attrs = (e.get("Actor") or {}).get("Attributes", {})
            if attrs.get("name") != name:
                continue
            life = by_id.setdefault(e.get("id") or e["Actor"]["ID"], {})
            life.setdefault("image", attrs.get("image", ""))
            life[e.get("Action") or e.get("status")] = e.get("timeNano", 0) / 1e9
        return [life for life in by_id.values() if "destroy" in life]

    def removed(self, name: str) -> CheckResult:
        """The container ``name`` existed since the chapter began and is gone now (``docker rm``)."""
        info = self._inspect(name)
        if info is not None:
            running = info["State"]["Status"] in ("running", "paused", "restarting")
            return _r(False, "ex.gone.running" if running else "ex.gone.stopped", name=name)
        if self._destroyed(name):
            return _r(True, "ex.rm.ok", name=name)
        return _r(False, "ex.gone.never", name=name)

    def _destroyed(self, name: str) -> bool:
        events = self.api.events(since=int(self.since), until=int(time.time()) + 1, decode=True,
                                 filters={"type": "container", "event": "destroy"})
        return any((e.get("Actor") or {}).get("Attributes", {}).get("name") == name for e in events)

    # -- images ----------------------------------------------------------------------------------
    def pulled(self, ref: str) -> CheckResult:
        """The image ``ref`` is here and the engine pulled it since the chapter began (its ``pull``
        event: a ``docker tag`` does not pass); another tag of the same repository is the usual mistake.
        (A chapter whose own cells pull ``ref`` after its setup should ask for another tag: the check
        cannot tell the learner's pull from the chapter's.)"""
        if not self._image_id(ref):
            repo = _norm(ref).rsplit(":", 1)[0]
            others = sorted({_short(tag) for img in self.api.images(name=repo) for tag in img.get("RepoTags") or []})
            if others:
                return _r(False, "ex.img.other_tag", ref=ref, others=", ".join(others))
            return _r(False, "ex.img.missing", ref=ref)
        want = _norm(ref)
        for e in self.api.events(since=int(self.since), until=int(time.time()) + 1, decode=True,
                                 filters={"type": "image", "event": "pull"}):
            actor = e.get("Actor") or {}
            if want in {_norm(actor.get("ID", "") or "-"), _norm(actor.get("Attributes", {}).get("name", "") or "-")}:
                return _r(True, "ex.img.pulled", ref=ref)
        return _r(False, "ex.img.notpulled", ref=ref)

    def tag_of(self, ref: str, want: str) -> CheckResult:
        """``ref`` is another name of the image ``want`` (``docker tag``)."""
        have, target = self._image_id(ref), self._image_id(want)
        if have is None:
            return _r(False, "ex.img.missing", ref=ref)
        if have != target:
            names = [_short(tg) for img in self.api.images() if img["Id"] == have for tg in img.get("RepoTags") or []]
            actual = ", ".join(n for n in names if _norm(n) != _norm(ref)) or have[7:19]
            return _r(False, "ex.img.tag_of", ref=ref, actual=actual, want=want)
        return _r(True, "ex.ok", what=f"{ref} = {want}")

    def image_with_file(self, ref: str, path: str, content: str, base: str | None = None,
                        not_same_as: tuple[str, ...] = ()) -> CheckResult:
        """A new image ``ref`` (not just another name of ``base`` or ``not_same_as``), on top of ``base``,
        whose file ``path`` contains ``content``. The hint looks for the change in running containers."""
        have = self._image_id(ref)
        if have is None:
            return _r(False, "ex.img.missing", ref=ref)
        for other in (base, *not_same_as):
            if other and self._image_id(other) == have:
                return _r(False, "ex.img.same_as", ref=ref, other=other)
        info = self.api.inspect_image(ref)
        if _when(info["Created"]) < self.since:
            return _r(False, "ex.img.old", ref=ref)
        layers = info["RootFS"].get("Layers") or []
        if base and self._image_id(base):
            below = self.api.inspect_image(base)["RootFS"].get("Layers") or []
            if layers[:len(below)] != below:
                return _r(False, "ex.img.base", ref=ref, base=base, n=len(below))
        out = self._cat(ref, path)
        if out is None or content not in out:
            where = ""
            for c in self.api.containers():
                info = self._inspect(c["Id"])
                if info and self._exec(info, ["cat", path])[1].find(content) >= 0:
                    where = t("ex.img.where", other=c["Names"][0].lstrip("/"))
                    break
            key = "ex.img.nofile" if out is None else "ex.img.content"
            return _r(False, key, ref=ref, path=path, want=content, where=where)
        return _r(True, "ex.img.ok", ref=ref, n=len(layers))

    def _cat(self, ref: str, path: str) -> str | None:
        c = self.api.create_container(ref, ["cat", path], entrypoint=[], labels=dict(self.lab.labels))
        try:
            self.api.start(c["Id"])
            code = self.api.wait(c["Id"], timeout=60)["StatusCode"]
            out = self.api.logs(c["Id"]).decode(errors="replace")
        finally:
            self.api.remove_container(c["Id"], force=True)
        return out if code == 0 else None

    # -- volumes ---------------------------------------------------------------------------------
    def volume_file(self, name: str, path: str, content: str, mount: str = "/data") -> CheckResult:
        """The volume ``name`` holds ``mount/path`` = ``content`` and no container uses it any more."""
        file = path[len(mount):].lstrip("/") if path.startswith(mount + "/") else path.lstrip("/")
        try:
            self.api.inspect_volume(name)
        except docker.errors.NotFound:
            return _r(False, "ex.vol.missing", name=name)
        users = [c["Names"][0].lstrip("/") for c in self.api.containers(all=True, filters={"volume": name})]
        c = self.api.create_container("busybox:1.35", ["cat", f"/v/{file}"], labels=dict(self.lab.labels),
                                      host_config=self.api.create_host_config(binds=[f"{name}:/v:ro"]))
        try:
            self.api.start(c["Id"])
            code = self.api.wait(c["Id"], timeout=60)["StatusCode"]
            out = self.api.logs(c["Id"]).decode(errors="replace").strip()
        finally:
            self.api.remove_container(c["Id"], force=True)
        if code != 0:
            for other in self.api.containers(all=True):
                if any(d["Path"] == path for d in self.api.diff(other["Id"]) or []):
                    return _r(False, "ex.vol.inlayer", name=name, path=path, dir=mount,
                              other=other["Names"][0].lstrip("/"))
            return _r(False, "ex.vol.nofile", name=name, file=file, dir=mount, path=path)
        if out != content:
            return _r(False, "ex.vol.content", name=name, file=file, got=out[:40], want=content)
        if users:
            return _r(False, "ex.vol.users", name=name, others=" ".join(users))
        return _r(True, "ex.vol.ok", name=name, file=file, want=content)

    # -- the daemon's configuration ------------------------------------------------------------------
    def daemon_json(self, path: str | Path, mirror: str) -> CheckResult:
        """``path`` is a daemon.json that the engine's own ``dockerd --validate`` accepts and that
        lists ``mirror`` in ``registry-mirrors``."""
        path = Path(path)
        if not path.is_file():
            return _r(False, "ex.json.missing", path=path.name)
        cli = Path(self.lab.config.docker_cli)
        dockerd = next((str(p) for p in (cli.parent.parent / "sbin" / "dockerd", cli.parent / "dockerd")
                        if p.exists()), shutil.which("dockerd") or "dockerd")
        r = subprocess.run([dockerd, "--validate", "--config-file", str(path)], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            why = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
            return _r(False, "ex.json.refused", why=why[0].replace(str(path), path.name)[-160:])
        conf = json.loads(path.read_text())
        got = conf.get("registry-mirrors")
        if got is None:
            return _r(False, "ex.json.key", keys=", ".join(conf) or "—")
        if mirror not in [m.rstrip("/") for m in got]:
            return _r(False, "ex.json.mirror", got=got, want=mirror)
        return _r(True, "ex.json.ok", want=mirror)

    def own_engine_mirror(self, mirror: str) -> CheckResult:
        """An engine of the learner's own (``OwnEngine``) answers and its ``docker info`` lists ``mirror``
        under Registry Mirrors (read from that engine, not from a file or a variable)."""
        from .throwaway import running_engines

        engines = running_engines()
        if not engines:
            return _r(False, "ex.own.none")
        seen: list[str] = []
        for engine in engines:
            got = engine.mirrors()
            if mirror.rstrip("/") in got:
                return _r(True, "ex.own.ok", want=mirror)
            seen += got
        return _r(False, "ex.own.mirror", got=", ".join(seen) or "—", want=mirror)


    # == 第七章 · images built from a Dockerfile ======================================================
    # (one block, kept apart from the checks above so that edits to either merge cleanly)
    def _fresh_image(self, ref: str, image_id: str, created: str) -> bool:
        """Made since the chapter began: a fully cached rebuild keeps the old creation time (BuildKit
        takes it from the cache), but its image id is new."""
        return _when(created) >= self.since or image_id not in getattr(self, "images_at_start", {image_id})

    def note_images(self) -> None:
        """Remember which images are here now (``start`` calls it): every build makes a new image id,
        so an id not in this set was made since, whatever its creation time says."""
        self.images_at_start = {img["Id"] for img in self.api.images(all=True)}

    def _built(self, ref: str) -> tuple[dict[str, Any] | None, CheckResult | None]:
        """The image ``ref``, made (or named) since the chapter began by a Dockerfile build, not by
        ``docker commit`` (whose top history entry is the container's command, not a build step)."""
        image_id = self._image_id(ref)
        if image_id is None:
            return None, _r(False, "ex.img.missing", ref=ref)
        info = dict(self.api.inspect_image(ref))
        if not self._fresh_image(ref, image_id, info["Created"]):
            return None, _r(False, "ex.img.old", ref=ref)
        top = (self.api.history(ref) or [{}])[0]
        if top.get("Comment") != "buildkit.dockerfile.v0":
            return None, _r(False, "ex7.commit", ref=ref)
        return info, None

    def _run_check(self, ref: str, cmd: list[str] | None = None, port: int | None = None,
                   entrypoint: list[str] | None = None) -> Any:
        """A throwaway container of ``ref`` (the check's own, labelled), started; the caller removes it."""
        kw: dict[str, Any] = {"labels": dict(self.lab.labels)}
        if port is not None:
            kw["ports"] = [port]
            kw["host_config"] = self.api.create_host_config(port_bindings={port: ("127.0.0.1", None)})
        if entrypoint is not None:
            kw["entrypoint"] = entrypoint
        c = self.api.create_container(ref, cmd, **kw)
        try:
            self.api.start(c["Id"])
        except docker.errors.APIError:
            self.api.remove_container(c["Id"], force=True)
            raise
        return c["Id"]

    def _serve(self, ref: str, page: str | tuple[str, ...], port: int = 80) -> CheckResult | None:
        """``ref`` run as it is (its own CMD) serves a page with ``page`` (each of them) on ``port``;
        None when it does."""
        cid = self._run_check(ref, port=port)

        def exited() -> CheckResult | None:
            info = self.api.inspect_container(cid)
            if info["State"]["Status"] == "running":
                return None
            lines = self.api.logs(cid).decode(errors="replace").strip().splitlines()
            cmd = " ".join([*(info["Config"].get("Entrypoint") or []), *(info["Config"].get("Cmd") or [])])
            return _r(False, "ex7.page.exited", ref=ref, cmd=cmd or "—", code=info["State"]["ExitCode"],
                      last=(lines or ["—"])[-1][:80])

        try:
            binding = (self.api.inspect_container(cid)["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
            body, why = (self._page(f"http://127.0.0.1:{binding[0]['HostPort']}/") if binding
                         else (None, "no port"))
            if body is None:  # a failed CheckResult is falsy: no `or` here
                gone = exited()
                return gone if gone is not None else _r(False, "ex7.page.down", ref=ref, port=port, why=why)
            # a server that goes to the background (nginx without `daemon off;`) can answer once in the
            # moment before its PID 1 exits and takes it along: it must still be up a moment later
            for _ in range(4):
                time.sleep(0.25)
                gone = exited()
                if gone is not None:
                    return gone
            for want in (page,) if isinstance(page, str) else page:
                if want not in body:
                    got = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()[:60]
                    return _r(False, "ex7.page.content", ref=ref, want=want, got=got)
            return None
        finally:
            self.api.remove_container(cid, force=True)

    def built_page(self, ref: str, page: str, base: str | None = None) -> CheckResult:
        """An image ``ref`` built from a Dockerfile (on ``base``) whose container, run as it is,
        serves a page containing ``page`` on port 80."""
        info, bad = self._built(ref)
        if bad is not None:
            return bad
        assert info is not None
        if base and self._image_id(base):
            below = self.api.inspect_image(base)["RootFS"].get("Layers") or []
            if (info["RootFS"].get("Layers") or [])[:len(below)] != below:
                return _r(False, "ex7.base", ref=ref, base=base)
        bad = self._serve(ref, page)
        return bad if bad is not None else _r(True, "ex7.page.ok", ref=ref, want=page)

    def cache_reused(self, first: str, second: str, stamp: str, changed: str) -> CheckResult:
        """Two builds, ``first`` then ``second`` after ``changed`` was edited, where the dependency
        step (which writes a random ``stamp``) came from the cache: the same stamp in both."""
        for ref in (first, second):
            _, bad = self._built(ref)
            if bad is not None:
                return bad
        if self._image_id(first) == self._image_id(second):
            return _r(False, "ex7.cache.same", first=first, second=second, changed=changed)
        a, b = self._cat(first, changed), self._cat(second, changed)
        if a is None or b is None:
            return _r(False, "ex.img.nofile", ref=first if a is None else second, path=changed, where="")
        if a == b:
            return _r(False, "ex7.cache.nochange", first=first, second=second, changed=changed)
        s1, s2 = self._cat(first, stamp), self._cat(second, stamp)
        if s1 is None or s2 is None:
            return _r(False, "ex.img.nofile", ref=first if s1 is None else second, path=stamp, where="")
        if s1 != s2:
            return _r(False, "ex7.cache.rerun", second=second, stamp=stamp, changed=changed)
        return _r(True, "ex7.cache.ok", second=second, stamp=stamp)

    def smaller_than(self, ref: str, mb: float, page: str | tuple[str, ...]) -> CheckResult:
        """``ref`` built from a Dockerfile, below ``mb`` MB as ``docker image ls`` counts it, and still
        serving a page with ``page`` (made in the build stage)."""
        info, bad = self._built(ref)
        if bad is not None:
            return bad
        assert info is not None
        size = next((int(i.get("Size") or 0) for i in self.api.images() if i["Id"] == info["Id"]), 0)
        if size >= mb * 1e6:
            base = self._base_of(info)
            return _r(False, "ex7.size.big", ref=ref, size=round(size / 1e6, 1), mb=mb, base=base)
        bad = self._serve(ref, page)
        return bad if bad is not None else _r(True, "ex7.size.ok", ref=ref, size=round(size / 1e6, 1), mb=mb)

    def _base_of(self, info: dict[str, Any]) -> str:
        """The course image whose layers ``info``'s layers start with (longest first), or "?"."""
        layers = info["RootFS"].get("Layers") or []
        best, name = 0, "?"
        for img in self.api.images():
            tags = [tg for tg in img.get("RepoTags") or [] if tg != "<none>:<none>"]
            if not tags or img["Id"] == info["Id"]:
                continue
            below = self.api.inspect_image(img["Id"])["RootFS"].get("Layers") or []
            if len(below) > best and layers[:len(below)] == below:
                best, name = len(below), _short(tags[0])
        return name

    def non_root(self, ref: str) -> CheckResult:
        """``ref`` built from a Dockerfile whose containers run, by default, as a user other than root."""
        info, bad = self._built(ref)
        if bad is not None:
            return bad
        assert info is not None
        user = (info.get("Config") or {}).get("User") or ""
        if user in ("", "root", "0", "0:0", "root:root"):
            return _r(False, "ex7.user.root", ref=ref, user=user or "—")
        try:
            cid = self._run_check(ref, ["id"], entrypoint=[])
        except docker.errors.APIError as e:
            return _r(False, "ex7.user.unknown", ref=ref, user=user, why=str(e.explanation or e)[-90:])
        try:
            code = self.api.wait(cid, timeout=60)["StatusCode"]
            out = self.api.logs(cid).decode(errors="replace").strip()
        finally:
            self.api.remove_container(cid, force=True)
        if code != 0:
            return _r(False, "ex7.user.unknown", ref=ref, user=user, why=out[-90:] or f"exit {code}")
        if out.startswith("uid=0("):
            return _r(False, "ex7.user.root", ref=ref, user=user)
        return _r(True, "ex7.user.ok", ref=ref, user=user, id=out.split()[0])


def start(lab: Any, chapter: str = "") -> Exercises:
    """Chapter ``chapter``'s exercises ("03"), timed from now (call it in the chapter's setup cell,
    after the reset)."""
    ex = Exercises(lab, chapter=chapter)
    ex.note_images()  # chapter 7's checks of built images
    return ex
