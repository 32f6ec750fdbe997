"""Autograde submissions, each in its own :class:`Sandbox`, ``jobs`` at a time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labctl.state import REPO

from .collect import Submission
from .course import Course
from .messages import t
from .sandbox import Limits, Sandbox

__all__ = ["Outcome", "grade_all", "grade_one", "run_in_sandbox"]


@dataclass
class Outcome:
    student: str
    lab: str
    seconds: float = 0.0
    peak_memory: int = 0  # bytes, the sandbox cgroup's high-water mark (engine, kernel, disk)
    error: str = ""  # why nbgrader did not finish; empty when it did
    detail: dict[str, object] = field(default_factory=dict)


def run_in_sandbox(work: Path, job: dict[str, object], mirror: str, timeout: int,
                   limits: Limits, scratch: Path) -> tuple[dict[str, object], int, bool]:
    """Run the worker for ``job`` in a fresh sandbox; (its result, peak memory, timed out).

    The result also says how often the sandbox's limits were hit (``limit_hits``)."""
    box = Sandbox.allocate(scratch, work, mirror, limits)
    timed_out = False
    try:
        box.create()
        (work / "job.json").write_text(json.dumps({**job, "sandbox": box.to_dict(), "work": str(work)}))
        with open(work / "worker.log", "wb") as log:
            try:
                subprocess.run([sys.executable, "-m", "labs.grading.worker", str(work / "job.json")],
                               cwd=REPO, timeout=timeout, check=False, stdout=log, stderr=log)
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        peak, hits = box.teardown()
    result = json.loads((work / "result.json").read_text()) if (work / "result.json").exists() else {}
    seen = dict(result.get("limit_hits") or {})  # type: ignore[call-overload]
    result["limit_hits"] = {k: max(v, int(seen.get(k, 0))) for k, v in hits.items()}
    return result, max(peak, int(result.get("peak_memory", 0) or 0)), timed_out


def grade_one(course: Course, sub: Submission, mirror: str, cell_timeout: int,
              submission_timeout: int, limits: Limits) -> Outcome:
    t0 = time.monotonic()
    out = Outcome(sub.student, sub.lab)
    dest = course.submitted(sub.student, sub.lab)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy(sub.notebook, dest / f"{sub.lab}.ipynb")
    shutil.rmtree(course.autograded(sub.student, sub.lab).parent, ignore_errors=True)
    work = course.workdir(sub.student, sub.lab)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    job = {"course": str(course.root), "student": sub.student, "assignment": sub.lab,
           "cell_timeout": cell_timeout}
    result, out.peak_memory, timed_out = run_in_sandbox(work, job, mirror, submission_timeout,
                                                        limits, course.root / "engines")
    out.detail = result
    if timed_out:
        out.error = t("grade.timeout", s=submission_timeout)
    if not out.error and ("error" in result or result.get("rc") not in (0, None) or not result):
        err = result.get("error") or f"nbgrader exit {result.get('rc')}"
        out.error = t("grade.failed", err=err, log=work / "nbgrader.log")
    out.seconds = round(time.monotonic() - t0, 2)
    return out


def grade_all(course: Course, subs: list[Submission], mirror: str, *, jobs: int = 2,
              cell_timeout: int = 60, submission_timeout: int = 600,
              limits: Limits | None = None) -> list[Outcome]:
    limits = limits or Limits()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(grade_one, course, s, mirror, cell_timeout, submission_timeout, limits)
                   for s in subs]
        return [f.result() for f in futures]
