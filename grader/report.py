"""The grading report: per submission the score nbgrader's gradebook holds, per task the points
and, for a failed task, the reason (the test cell's error, read from the autograded notebook).

Scores come from the gradebook (nbgrader's numbers); this module only puts them side by side
with the reasons, the timings, the peak memory and the problems found while collecting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from grader.collect import Problem
from grader.course import LABS, Course, grade_id_of, nbgrader_meta, printable
from labs.grading.messages import t

__all__ = ["SubmissionReport", "TaskResult", "build", "write"]



@dataclass
class Outcome:
    student: str
    lab: str
    seconds: float = 0.0
    peak_memory: int = 0  # bytes, the sandbox cgroup's high-water mark (engine, kernel, tmpfs)
    error: str = ""  # the learner's side stopped early (timeout, nbgrader failed): recorded checks count
    not_graded: str = ""  # the grader's fault (engine, sandbox): no grade at all
    tasks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    detail: dict[str, object] = field(default_factory=dict)


@dataclass
class TaskResult:
    task: str  # the test cell's grade_id, e.g. "task3-serve"
    score: float
    max_score: float
    reason: str = ""


@dataclass
class SubmissionReport:
    student: str
    lab: str
    score: float
    max_score: float
    tasks: list[TaskResult] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    limit_hits: dict[str, int] = field(default_factory=dict)  # e.g. {"pids_ctr": 5120}: a fork bomb met its limit
    tampered: list[str] = field(default_factory=list)  # locked cells edited or deleted (nbgrader restored them)
    not_graded: bool = False  # the grader failed (engine, sandbox): no score, see ``problem``


def _tampered(submitted: Path, release: Path) -> list[str]:
    """Locked cells of the student version that the submission edited or deleted (nbgrader
    grades with the instructor's version anyway; this is for a human to look at)."""
    try:
        sub = nbformat.read(submitted, as_version=4)
        rel = nbformat.read(release, as_version=4)
    except Exception:  # unreadable: reported elsewhere
        return []
    try:
        have = {grade_id_of(c): c.get("source") for c in sub.cells}
        return [gid for c in rel.cells
                if nbgrader_meta(c).get("locked") and (gid := grade_id_of(c)) and have.get(gid) != c.source]
    except Exception:  # odd metadata, deep nesting: not for this list
        return []


def build(course: Course, outcomes: list[Outcome], problems: list[Problem],
          cell_timeout: int) -> list[SubmissionReport]:
    from nbgrader.api import Gradebook, MissingEntry

    reports: list[SubmissionReport] = []
    with Gradebook(course.db_url, "dockerlab") as gb:
        for o in outcomes:
            nb = gb.find_notebook(o.lab, o.lab)
            tasks = []
            for cell in sorted(nb.grade_cells, key=lambda c: c.name):
                try:
                    score = float(gb.find_grade(cell.name, o.lab, o.lab, o.student).score)
                except MissingEntry:
                    score = 0.0
                ok, reason = o.tasks.get(cell.name, (False, ""))
                if not ok and o.error and not o.not_graded:
                    reason = f"{reason} ({o.error})"
                tasks.append(TaskResult(cell.name, score, float(cell.max_score), "" if ok else reason))
            score = sum(x.score for x in tasks)
            hits = {k: v for k, v in dict(o.detail.get("limit_hits") or {}).items() if v}  # type: ignore[call-overload]
            problem = printable(t("grade.not_graded", reason=o.not_graded) if o.not_graded else o.error)
            reports.append(SubmissionReport(o.student, o.lab, score, float(nb.max_score), tasks, problem,
                                            o.seconds, round(o.peak_memory / 2**20, 1), hits,
                                            _tampered(course.submitted(o.student, o.lab) / f"{o.lab}.ipynb",
                                                      course.release(o.lab)), bool(o.not_graded)))
        for p in problems:
            lab = p.lab or ""
            max_score = float(gb.find_notebook(lab, lab).max_score) if lab in LABS else 0.0
            reports.append(SubmissionReport(p.student or "", lab, 0.0, max_score,
                                            problem=printable(f"{p.where}: {p.message}")))
    return reports


def write(reports: list[SubmissionReport], out_dir: Path) -> tuple[Path, Path]:
    """``report.json`` (for scripts and tests) and ``report.txt`` (for people)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "report.json"
    js.write_text(json.dumps([asdict(r) for r in reports], ensure_ascii=False, indent=1))
    lines = []
    for r in reports:
        if r.problem and not r.tasks:
            lines.append(f"!  {r.problem}")
            continue
        hits = "   limits hit: " + ", ".join(f"{k} ×{v}" for k, v in r.limit_hits.items()) if r.limit_hits else ""
        score = "—" if r.not_graded else f"{r.score:g}"
        lines.append(f"{r.student:<14} {r.lab:<5} {score}/{r.max_score:g}   "
                     f"{r.seconds:.1f} s   {r.peak_memory_mb:.0f} MB{hits}")
        if r.problem:
            lines.append(f"     ! {r.problem}")
        if r.tampered:
            lines.append("     ⚠ " + t("grade.tampered", cells=", ".join(r.tampered)))
        for task in r.tasks:
            mark = "✔" if task.score >= task.max_score else "✘"
            reason = f"  {task.reason}" if task.reason else ""
            lines.append(f"     {mark} {task.task:<16} {task.score:g}/{task.max_score:g}{reason}")
    txt = out_dir / "report.txt"
    txt.write_text("\n".join(lines) + "\n")
    return js, txt
