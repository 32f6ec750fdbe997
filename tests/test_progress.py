"""Issue 21 item 7: an exercise passed once stays passed across kernel restarts and re-runs (a record in
the learner's lab home, owner-only), while each check still shows what the engine shows now; the
index shows the progress per chapter. Plain Python: no engine."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace

from kernel_ext.check import CheckResult
from kernel_ext.exercises import Exercises
from kernel_ext.progress import Progress, exercise_counts, overview
from kernel_ext.views.progress import progress_html, progress_text


def _kernel(progress: Progress, chapter: str = "06") -> Exercises:
    """What a chapter's setup cell makes (``exercises.start``), in a fresh kernel."""
    return Exercises(SimpleNamespace(api=None), chapter=chapter, progress=progress)


def test_a_pass_survives_a_restart_and_the_engine_still_decides(tmp_path: Path) -> None:
    record = Progress(tmp_path / "home" / "progress.json")
    first = _kernel(record)
    assert not first.graded(1, CheckResult(False, "没有找到容器 web")).ok
    assert record.chapter("06") == []  # a failure is not recorded
    assert first.graded(1, CheckResult(True, "容器 web 正在运行")).ok
    assert record.chapter("06") == [1]
    mode = stat.S_IMODE(record.path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    when = json.loads(record.path.read_text())["06"]["1"]

    again = _kernel(record)  # kernel restarted, chapter re-run: its reset removed the container
    now = again.graded(1, CheckResult(False, "没有找到容器 web"))
    assert not now.ok  # the check shows what the engine shows now
    assert record.chapter("06") == [1]  # ... and the pass is still remembered
    assert again.graded(1, CheckResult(True, "容器 web 正在运行")).ok
    assert json.loads(record.path.read_text())["06"]["1"] == when  # the first pass is kept


def test_a_broken_record_starts_again(tmp_path: Path) -> None:
    record = Progress(tmp_path / "progress.json")
    record.path.write_text("{not json")
    assert record.load() == {}
    _kernel(record, "03").graded(2, CheckResult(True, "ok"))
    assert record.chapter("03") == [2]


def test_counts_match_the_classrooms_computation() -> None:
    """The index counts exercises as the classroom's progress service finds them in the chapters."""
    from classroom.progress import exercises

    found: dict[str, set[str]] = {}
    for ex in exercises():
        found.setdefault(ex.chapter, set()).add(ex.number)
    assert exercise_counts() == {ch: len(nums) for ch, nums in sorted(found.items())}


def test_overview_per_chapter_in_words_and_marks(tmp_path: Path) -> None:
    record = Progress(tmp_path / "progress.json")
    counts = exercise_counts()
    k = _kernel(record, "06")
    for n in range(1, counts["06"] + 1):
        k.graded(n, CheckResult(True, "ok"))
    _kernel(record, "03").graded(1, CheckResult(True, "ok"))
    o = overview(record)
    assert [c.chapter for c in o.chapters] == sorted(counts)
    text = progress_text(o)
    assert f"✔ 第 06 章：{counts['06']}/{counts['06']}（全部通过）" in text
    assert f"◐ 第 03 章：1/{counts['03']}（通过了一部分）" in text
    assert f"○ 第 01 章：0/{counts['01']}（还没有通过的）" in text
    page = progress_html(o)
    assert "<caption>" in page and "全部通过" in page and f"1/{counts['03']}" in page
    assert o._repr_mimebundle_()["text/plain"] == text
