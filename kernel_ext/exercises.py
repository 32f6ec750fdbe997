"""Checks for the chapters' exercises that read the engine's state and know the usual mistakes.

A chapter's setup cell makes one :class:`Exercises` (``checks = exercises.start(lab)``); it notes when the
learner arrived, so a container made before that (a leftover of an earlier visit, which the reset
does not remove when the learner made it in a terminal) does not pass. Each check returns a
:class:`~kernel_ext.check.CheckResult`: ✔ with what it found, or ✘ with what it found, ``→``, and
what to do next.

>>> checks = start(lab)                                                       # doctest: +SKIP
>>> checks.container("ch01-box", image="busybox:1.35", running=True, command="sleep")  # doctest: +SKIP
✘ 没有名为 ch01-box 的容器 → 用 docker run --name ch01-box … 创建它
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
from .messages import register, t

__all__ = ["Exercises", "start"]

_AUTO_NAME = re.compile(r"^[a-z]+_[a-z]+\d*$")  # the names the engine makes up (festive_einstein)

# Learner-facing texts (kernel_ext's .po catalogue is being reworked; these move there after).
register({
    "ex.ok": {"zh": "正确：{what}", "en": "Correct: {what}"},
    "ex.ctr.missing": {"zh": "没有名为 {name} 的容器 → 用 docker run --name {name} … 创建它",
                       "en": "There is no container named {name} → create it with docker run --name {name} …"},
    "ex.ctr.unnamed": {"zh": "没有名为 {name} 的容器，但有一个用 {image} 创建、名字由引擎随机取的容器 {other}"
                             " → 忘了 --name：docker rm -f {other}，再加上 --name {name} 运行",
                       "en": "No container named {name}, but {other} (made from {image}, a name the engine made up)"
                             " → --name was missing: docker rm -f {other}, then run again with --name {name}"},
    "ex.ctr.old": {"zh": "容器 {name} 在你打开这一章之前就有了（之前留下的） → docker rm -f {name}，然后按题目重新创建",
                   "en": "Container {name} was there before you opened this chapter → docker rm -f {name}, then make it again"},
    "ex.ctr.image": {"zh": "容器 {name} 是用 {actual} 创建的，题目要的是 {want} → docker rm -f {name}，再用 {want} 运行",
                     "en": "Container {name} was made from {actual}, not {want} → docker rm -f {name}, then run {want}"},
    "ex.ctr.exited": {"zh": "容器 {name} 已经停止（退出码 {code}），它的命令 `{cmd}` 已经结束了"
                            " → docker rm {name}，再用 -d 运行一个不会马上结束的命令（比如 sleep 600）",
                      "en": "Container {name} has stopped (exit code {code}); its command `{cmd}` ended"
                            " → docker rm {name}, then run with -d and a command that keeps running (sleep 600)"},
    "ex.ctr.created": {"zh": "容器 {name} 建好了但从没启动过（docker create？） → docker start {name}",
                       "en": "Container {name} was created but never started (docker create?) → docker start {name}"},
    "ex.ctr.running": {"zh": "容器 {name} 还在运行 → docker stop {name}",
                       "en": "Container {name} is still running → docker stop {name}"},
    "ex.ctr.failed": {"zh": "容器 {name} 退出码是 {code}（命令出错了），输出的最后一行：{last} → 看看命令有没有打错，"
                            "docker rm {name} 后重来",
                      "en": "Container {name} exited with code {code} (the command failed); last line: {last}"
                            " → check the command for typos, docker rm {name} and try again"},
    "ex.ctr.cmd": {"zh": "容器 {name} 运行的命令是 `{cmd}`，不包含 {want} → docker rm -f {name}，让它运行 {want}",
                   "en": "Container {name} runs `{cmd}`, not {want} → docker rm -f {name}, make it run {want}"},
    "ex.ctr.logs": {"zh": "容器 {name} 的输出里没有「{want}」 → 看看 docker logs {name}，检查命令",
                    "en": "The output of {name} does not contain “{want}” → read docker logs {name}, check the command"},
    "ex.ctr.hostname": {"zh": "容器 {name} 的主机名是 {actual}（--name 只给容器起名，不改主机名） → docker rm -f {name}，"
                              "加上 --hostname {want} 重新运行",
                        "en": "Container {name} has host name {actual} (--name names the container only) →"
                              " docker rm -f {name}, run again with --hostname {want}"},
    "ex.ctr.nomem": {"zh": "容器 {name} 没有设内存上限（HostConfig.Memory 为 0） → docker rm -f {name}，加上 -m {want}m 重新运行",
                     "en": "Container {name} has no memory limit (HostConfig.Memory is 0) → docker rm -f {name}, run with -m {want}m"},
    "ex.ctr.mem": {"zh": "容器 {name} 的内存上限是 {actual} 字节（{mib} MiB），要的是 {want} MiB → docker rm -f {name}，用 -m {want}m",
                   "en": "Container {name} is limited to {actual} bytes ({mib} MiB), not {want} MiB → docker rm -f {name}, use -m {want}m"},
    "ex.ctr.noport": {"zh": "容器 {name} 没有发布任何端口，主机上访问不到它 → docker rm -f {name}，加上 -p 127.0.0.1::{port} 重新运行",
                      "en": "Container {name} publishes no port → docker rm -f {name}, run again with -p 127.0.0.1::{port}"},
    "ex.ctr.port": {"zh": "容器 {name} 发布的是容器里的 {actual} 端口，可 nginx 在 {port} 端口监听 → docker rm -f {name}，"
                          "用 -p 127.0.0.1::{port}（冒号后面是容器里的端口）",
                    "en": "Container {name} publishes container port {actual}, but nginx listens on {port} →"
                          " docker rm -f {name}, use -p 127.0.0.1::{port} (the container's port comes last)"},
    "ex.ctr.down": {"zh": "容器 {name} 的端口 {url} 打不开（{why}） → docker logs {name} 看看 nginx 有没有报错",
                    "en": "{url} of container {name} does not answer ({why}) → read docker logs {name}"},
    "ex.ctr.page": {"zh": "{url}（容器 {name}）的页面里没有「{want}」，它显示的是：{got} → 这个容器的镜像里首页没改过，"
                          "检查 {name} 是用哪个镜像运行的",
                    "en": "The page at {url} (container {name}) lacks “{want}”; it shows: {got} → this container's image"
                          " has the old page: check which image {name} runs"},
    "ex.ctr.exec": {"zh": "在容器 {name} 里运行 {cmd} 得到的是「{got}」，不是「{want}」 → docker logs {name} 看看服务起来没有",
                    "en": "{cmd} in {name} said “{got}”, not “{want}” → read docker logs {name}"},
    "ex.ctr.ok": {"zh": "容器 {name} 符合要求（{state}，镜像 {image}）", "en": "Container {name} is right ({state}, image {image})"},
    "ex.file.notrunning": {"zh": "容器 {name} 没在运行（{state}），进不去 → docker start {name}",
                           "en": "Container {name} is not running ({state}) → docker start {name}"},
    "ex.file.elsewhere": {"zh": "容器 {name} 里没有 {path}，可容器 {other} 的存储层里有它 → 你写在了另一个容器里："
                                "用 docker exec {name} … 在 {name} 里再写一次",
                          "en": "{path} is not in {name}, but it is in {other}'s writable layer → you wrote it in another"
                                " container: write it in {name} with docker exec {name} …"},
    "ex.file.missing": {"zh": "容器 {name} 里没有 {path} → docker exec {name} sh -c \"echo … > {path}\"",
                        "en": "{path} is not in container {name} → docker exec {name} sh -c \"echo … > {path}\""},
    "ex.file.content": {"zh": "{name} 里的 {path} 内容是「{got}」，要的是「{want}」 → 重新写一次（> 会覆盖）",
                        "en": "{path} in {name} says “{got}”, not “{want}” → write it again (> overwrites)"},
    "ex.file.ok": {"zh": "容器 {name} 的存储层里有 {path}（docker diff 里是 {kind} {path}）",
                   "en": "{path} is in {name}'s writable layer (docker diff: {kind} {path})"},
    "ex.img.old": {"zh": "镜像 {ref} 在你打开这一章之前就有了（之前留下的） → docker image rm {ref}，然后：{todo}",
                   "en": "Image {ref} was there before you opened this chapter → docker image rm {ref}, then: {todo}"},
    "ex.img.missing": {"zh": "本地没有镜像 {ref} → {todo}", "en": "There is no image {ref} here → {todo}"},
    "ex.img.other_tag": {"zh": "本地没有 {ref}，但有同一仓库的 {others} → 标签不同就是不同的镜像：{todo}",
                         "en": "No {ref} here, but {others} of the same repository → another tag is another image: {todo}"},
    "ex.img.same_as": {"zh": "{ref} 和 {other} 是同一个镜像（ID 相同）：这只是又打了一个标签，并没有做出新镜像 → {todo}",
                       "en": "{ref} is the same image as {other} (same ID): a tag was added, no image was made → {todo}"},
    "ex.img.tag_of": {"zh": "{ref} 指向的是 {actual}，不是 {want} → docker tag {want} {ref}（会把标签移过去）",
                      "en": "{ref} points at {actual}, not {want} → docker tag {want} {ref} (moves the tag)"},
    "ex.img.base": {"zh": "{ref} 不是在 {base} 之上做出来的（前 {n} 层和 {base} 的不一样） → 从 {base} 运行容器，再 commit",
                    "en": "{ref} is not built on {base} (its first {n} layers differ) → run a container of {base}, then commit"},
    "ex.img.nofile": {"zh": "{ref} 里没有 {path}{where} → {todo}", "en": "{ref} has no {path}{where} → {todo}"},
    "ex.img.content": {"zh": "{ref} 里的 {path} 没有「{want}」{where} → {todo}",
                       "en": "{path} in {ref} lacks “{want}”{where} → {todo}"},
    "ex.img.where": {"zh": "；不过正在运行的容器 {other} 里有：改好的是 {other}，提交的却是别的容器",
                     "en": "; but running container {other} has it: you changed {other} and committed another one"},
    "ex.img.ok": {"zh": "{ref} 符合要求（{n} 层）", "en": "{ref} is right ({n} layers)"},
    "ex.img.pulled": {"zh": "本地有 {ref}", "en": "{ref} is here"},
    "ex.rm.left": {"zh": "容器 {name} 运行完还在（{state}）：没加 --rm → docker rm {name}，再用 docker run --rm --name {name} …",
                   "en": "Container {name} is still there after it ran ({state}): --rm was missing → docker rm {name},"
                         " then docker run --rm --name {name} …"},
    "ex.rm.none": {"zh": "这一章开始以后引擎没有删除过名为 {name} 的容器 → docker run --rm --name {name} {image}",
                   "en": "No container named {name} was removed since you opened this chapter → docker run --rm --name {name} {image}"},
    "ex.rm.ok": {"zh": "容器 {name} 运行过，已被引擎删除（引擎的事件记录里有 destroy）",
                 "en": "Container {name} ran and the engine removed it (a destroy event)"},
    "ex.gone.running": {"zh": "容器 {name} 还在运行 → 先 docker stop {name}，再 docker rm {name}",
                        "en": "Container {name} is still running → docker stop {name}, then docker rm {name}"},
    "ex.gone.stopped": {"zh": "容器 {name} 已停止但还在 → docker rm {name}",
                        "en": "Container {name} has stopped but is still there → docker rm {name}"},
    "ex.gone.never": {"zh": "这一章开始以后没有过名为 {name} 的容器 → 先做上面的练习（创建并停止它），再删除",
                      "en": "There was no container named {name} since you opened this chapter → do the exercises above first"},
    "ex.vol.missing": {"zh": "没有名为 {name} 的数据卷 → docker volume create {name}",
                       "en": "There is no volume named {name} → docker volume create {name}"},
    "ex.vol.inlayer": {"zh": "数据卷 {name} 里没有 {path}，可容器 {other} 的存储层里有：挂载点写错了或没加 -v → "
                             "docker rm {other}，用 -v {name}:{dir} 再写",
                       "en": "{path} is not in volume {name} but in container {other}'s writable layer (no -v or a wrong mount point)"
                             " → docker rm {other}, write again with -v {name}:{dir}"},
    "ex.vol.nofile": {"zh": "数据卷 {name} 里没有 {file} → docker run --rm -v {name}:{dir} busybox:1.35 sh -c \"echo … > {path}\"",
                      "en": "Volume {name} has no {file} → docker run --rm -v {name}:{dir} busybox:1.35 sh -c \"echo … > {path}\""},
    "ex.vol.content": {"zh": "数据卷 {name} 里的 {file} 内容是「{got}」，要的是「{want}」 → 再写一次",
                       "en": "{file} in volume {name} says “{got}”, not “{want}” → write it again"},
    "ex.vol.users": {"zh": "文件对了，但容器 {others} 还在用着数据卷 {name}：题目要的是用完即删的容器 → docker rm {others}，下次加 --rm",
                     "en": "The file is right, but {others} still use volume {name} → docker rm {others}; use --rm next time"},
    "ex.vol.ok": {"zh": "数据卷 {name} 里有 {file}（{want}），写它的容器已经不在了：数据活过了容器",
                  "en": "Volume {name} holds {file} ({want}) and the container that wrote it is gone"},
    "ex.json.missing": {"zh": "还没有文件 {path} → 把 daemon.json 的内容写进这个文件",
                        "en": "There is no file {path} yet → write the daemon.json there"},
    "ex.json.refused": {"zh": "dockerd 拒绝了这份配置：{why} → 按报错改好它（JSON 不允许多余的逗号，地址要带 http://）",
                        "en": "dockerd refuses this configuration: {why} → fix it (no trailing commas in JSON; addresses need http://)"},
    "ex.json.key": {"zh": "dockerd 接受了这份配置，但里面没有 \"registry-mirrors\"（找到的键：{keys}） → 键名是复数 registry-mirrors，值是列表",
                    "en": "dockerd accepts it, but there is no \"registry-mirrors\" (keys: {keys}) → the key is registry-mirrors, a list"},
    "ex.json.mirror": {"zh": "registry-mirrors 是 {got}，里面没有本实验的加速器 {want} → 把 \"{want}\" 放进列表",
                       "en": "registry-mirrors is {got}, without the lab's mirror {want} → put \"{want}\" in the list"},
    "ex.json.ok": {"zh": "dockerd --validate 说 configuration OK，加速器是 {want}",
                   "en": "dockerd --validate says configuration OK; the mirror is {want}"},
})


def _r(ok: bool, key: str, **kw: Any) -> CheckResult:
    return CheckResult(ok, t(key, **kw))


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

    def __init__(self, lab: Any, since: float | None = None) -> None:
        self.lab, self.api = lab, lab.api
        self.since = time.time() if since is None else since

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
        return CheckResult(True, "；".join(r.reason for r in results))

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
        """A container ``name`` ran since the chapter began and the engine removed it (``--rm``)."""
        info = self._inspect(name)
        if info is not None:
            return _r(False, "ex.rm.left", name=name, state=info["State"]["Status"])
        if self._destroyed(name):
            return _r(True, "ex.rm.ok", name=name)
        return _r(False, "ex.rm.none", name=name, image=image)

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
        """The image ``ref`` is here (a pull); another tag of the same repository is the usual mistake."""
        if self._image_id(ref):
            return _r(True, "ex.img.pulled", ref=ref)
        repo = _norm(ref).rsplit(":", 1)[0]
        others = sorted({_short(tag) for img in self.api.images(name=repo) for tag in img.get("RepoTags") or []})
        todo = f"docker pull {ref}"
        if others:
            return _r(False, "ex.img.other_tag", ref=ref, others=", ".join(others), todo=todo)
        return _r(False, "ex.img.missing", ref=ref, todo=todo)

    def tag_of(self, ref: str, want: str) -> CheckResult:
        """``ref`` is another name of the image ``want`` (``docker tag``)."""
        have, target = self._image_id(ref), self._image_id(want)
        if have is None:
            return _r(False, "ex.img.missing", ref=ref, todo=f"docker tag {want} {ref}")
        if have != target:
            names = [_short(tg) for img in self.api.images() if img["Id"] == have for tg in img.get("RepoTags") or []]
            actual = ", ".join(n for n in names if _norm(n) != _norm(ref)) or have[7:19]
            return _r(False, "ex.img.tag_of", ref=ref, actual=actual, want=want)
        return _r(True, "ex.ok", what=f"{ref} = {want}")

    def image_with_file(self, ref: str, path: str, content: str, base: str | None = None,
                        not_same_as: tuple[str, ...] = (), todo: str = "") -> CheckResult:
        """A new image ``ref`` (not just another name of ``base`` or ``not_same_as``), on top of ``base``,
        whose file ``path`` contains ``content``. The hint looks for the change in running containers."""
        have = self._image_id(ref)
        if have is None:
            return _r(False, "ex.img.missing", ref=ref, todo=todo)
        for other in (base, *not_same_as):
            if other and self._image_id(other) == have:
                return _r(False, "ex.img.same_as", ref=ref, other=other, todo=todo)
        info = self.api.inspect_image(ref)
        if _when(info["Created"]) < self.since:
            return _r(False, "ex.img.old", ref=ref, todo=todo)
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
            return _r(False, key, ref=ref, path=path, want=content, where=where, todo=todo)
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


def start(lab: Any) -> Exercises:
    """A chapter's exercises, timed from now (call it in the chapter's setup cell, after the reset)."""
    return Exercises(lab)
