"""Checks for exercises: each returns a :class:`CheckResult` that renders ✔ / ✘ with a reason the
learner can act on. ``assert expect_image("web:v2")`` works in nbgrader test cells."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

from .errors import LabError
from .messages import t
from .views.bundle import Displayable

__all__ = [
    "CheckResult",
    "expect_container",
    "expect_file_in_image",
    "expect_http",
    "expect_image",
    "expect_no_dangling",
]

@dataclass(frozen=True)
class CheckResult(Displayable):
    """✔ or ✘ and a reason the learner can act on (:mod:`~kernel_ext.views.checks`)."""

    __view__ = "checks"
    ok: bool
    reason: str
    key: str = ""  # the catalogue key of the reason (an exercise's hint tier replaces an open step)
    tier: int = 0  # 0: no exercise hint; 1: the nudge; 2: the command's shape (exercises.Exercises.ex)

    def __bool__(self) -> bool:
        return self.ok

    def assert_ok(self) -> None:
        if not self.ok:
            raise AssertionError(self.reason)

    def __repr__(self) -> str:
        return self.text()


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
