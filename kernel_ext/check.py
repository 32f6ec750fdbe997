"""Checks for exercises: each returns a :class:`CheckResult` that renders ✔ / ✘ with a reason the
learner can act on. ``assert expect_image("web:v2")`` works in nbgrader test cells."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

from .errors import LabError
from .formatting import esc
from .messages import register, t

__all__ = [
    "CheckResult",
    "expect_container",
    "expect_file_in_image",
    "expect_http",
    "expect_image",
    "expect_no_dangling",
]

register({
    "chk.image.ok": {"zh": "镜像 {ref} 存在", "en": "image {ref} exists"},
    "chk.image.missing": {"zh": "本地没有镜像 {ref}：先 docker pull 或 docker commit 得到它", "en": "no local image {ref}: pull or commit it first"},
    "chk.image.label": {"zh": "镜像 {ref} 缺少标签 {label}={value}（现在是 {actual}）", "en": "image {ref} lacks label {label}={value} (it has {actual})"},
    "chk.file.ok": {"zh": "镜像 {ref} 中有 {path}", "en": "{path} is in image {ref}"},
    "chk.file.missing": {"zh": "镜像 {ref} 中没有文件 {path}：是否在提交（commit）之前写入了它？", "en": "image {ref} has no {path}: did you write it before committing?"},
    "chk.file.content": {"zh": "镜像 {ref} 中的 {path} 不含 “{content}”：检查写入的内容", "en": "{path} in image {ref} does not contain \"{content}\": check what you wrote"},
    "chk.ctr.ok": {"zh": "容器 {name} 符合要求", "en": "container {name} is as expected"},
    "chk.ctr.missing": {"zh": "没有名为 {name} 的容器：用 docker run --name {name} … 创建它", "en": "no container named {name}: create it with docker run --name {name} …"},
    "chk.ctr.state": {"zh": "容器 {name} 的状态是 {state}，应该是 {want}", "en": "container {name} is {state}, should be {want}"},
    "chk.ctr.image": {"zh": "容器 {name} 来自镜像 {actual}，应该来自 {want}", "en": "container {name} runs {actual}, should run {want}"},
    "chk.ctr.port": {"zh": "容器 {name} 没有把端口 {port} 发布到主机：用 -p {port}:80 运行它", "en": "container {name} does not publish port {port}: run it with -p {port}:80"},
    "chk.dangling.ok": {"zh": "没有虚悬镜像", "en": "no dangling images"},
    "chk.dangling.some": {"zh": "还有 {n} 个虚悬镜像：用 docker image prune 或 docker image rm 删除它们", "en": "{n} dangling images left: remove them with docker image prune or docker image rm"},
    "chk.http.ok": {"zh": "{url} 返回的页面包含 “{contains}”", "en": "{url} serves a page containing \"{contains}\""},
    "chk.http.down": {"zh": "访问 {url} 失败（{why}）：容器在运行吗？端口映射对吗？", "en": "{url} failed ({why}): is the container running, is the port published?"},
    "chk.http.content": {"zh": "{url} 的页面不含 “{contains}”：检查 index.html 的内容", "en": "{url} does not contain \"{contains}\": check index.html"},
})


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok

    def assert_ok(self) -> None:
        if not self.ok:
            raise AssertionError(self.reason)

    def text(self) -> str:
        return f"{'✔' if self.ok else '✘'} {self.reason}"

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        colour = "#1a7f37" if self.ok else "#cf222e"
        return {"text/plain": self.text(),
                "text/html": f"<div style='color:{colour};font-weight:bold'>{esc(self.text())}</div>"}


def _lab(lab: Any) -> Any:
    if lab is not None:
        return lab
    from .lab import connect

    return connect(session="check")


def expect_image(ref: str, labels: dict[str, str] | None = None, lab: Any = None) -> CheckResult:
    try:
        info = _lab(lab).image(ref)
    except LabError:
        return CheckResult(False, t("chk.image.missing", ref=ref))
    have = (info.get("Config") or {}).get("Labels") or {}
    for k, v in (labels or {}).items():
        if have.get(k) != v:
            return CheckResult(False, t("chk.image.label", ref=ref, label=k, value=v, actual=have.get(k)))
    return CheckResult(True, t("chk.image.ok", ref=ref))


def expect_file_in_image(ref: str, path: str, content: str | None = None, lab: Any = None) -> CheckResult:
    lab = _lab(lab)
    try:
        lab.image(ref)
        out = lab.run(ref, ["cat", path], detach=False, remove=True, entrypoint=[])
    except LabError as e:
        if e.key.startswith("image."):
            return CheckResult(False, t("chk.image.missing", ref=ref))
        return CheckResult(False, t("chk.file.missing", ref=ref, path=path))
    if content is not None and content not in out:
        return CheckResult(False, t("chk.file.content", ref=ref, path=path, content=content))
    return CheckResult(True, t("chk.file.ok", ref=ref, path=path))


def expect_container(name: str, running: bool = True, image: str | None = None, port: int | None = None,
                     lab: Any = None) -> CheckResult:
    lab = _lab(lab)
    try:
        c = lab.container(name)
    except LabError:
        return CheckResult(False, t("chk.ctr.missing", name=name))
    state = c.attrs["State"]["Status"]
    if running and state != "running":
        return CheckResult(False, t("chk.ctr.state", name=name, state=state, want="running"))
    if image is not None:
        tags = c.image.tags if c.image else []
        want = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
        if want not in tags:
            return CheckResult(False, t("chk.ctr.image", name=name, actual=", ".join(tags) or c.image.short_id,
                                        want=want))
    if port is not None:
        published = [int(b["HostPort"]) for bs in (c.attrs["NetworkSettings"]["Ports"] or {}).values()
                     for b in (bs or [])]
        if port not in published:
            return CheckResult(False, t("chk.ctr.port", name=name, port=port))
    return CheckResult(True, t("chk.ctr.ok", name=name))


def expect_no_dangling(lab: Any = None) -> CheckResult:
    rows = _lab(lab).images(filters={"dangling": True}).rows
    if rows:
        return CheckResult(False, t("chk.dangling.some", n=len(rows)))
    return CheckResult(True, t("chk.dangling.ok"))


def expect_http(url: str, contains: str, lab: Any = None, timeout: float = 5.0) -> CheckResult:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read().decode(errors="replace")
    except OSError as e:
        return CheckResult(False, t("chk.http.down", url=url, why=str(getattr(e, "reason", e))[:80]))
    if contains not in body:
        return CheckResult(False, t("chk.http.content", url=url, contains=contains))
    return CheckResult(True, t("chk.http.ok", url=url, contains=contains))
