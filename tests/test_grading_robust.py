"""What a hostile submissions folder or a malformed notebook does to the grader, without root and
without an engine: links, FIFOs, sockets, devices and oversized files are "not gradable" one by one
and never followed or waited on; odd but parseable notebooks are that submission's problem, never
the batch's; control characters never reach the report; feedback has no hidden tests unless asked."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from grader.collect import collect
from grader.course import SOURCE, Course, printable
from grader.report import Outcome, build, write
from kernel_ext.messages import language, set_language

HONEST = Path(__file__).parent / "labs_submissions" / "hostile" / "alice" / "lab1" / "lab1.ipynb"


@pytest.fixture
def english() -> Iterator[None]:
    was = language()
    set_language("en")
    yield
    set_language(was)


def _collect_in_time(root: Path, **kw: object) -> tuple[list, list]:  # type: ignore[type-arg]
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(collect(root, **kw)), daemon=True)  # type: ignore[arg-type]
    t.start()
    t.join(20)
    assert not t.is_alive(), "collecting the folder hung (a FIFO was opened for reading?)"
    return out[0]  # type: ignore[return-value]


def test_hostile_files_are_not_gradable_one_by_one(tmp_path: Path, english: None) -> None:
    subs = tmp_path / "subs"
    secret = tmp_path / "root-only.txt"
    secret.write_text("ROOT SECRET\n")

    def lab(student: str, name: str = "lab1") -> Path:
        d = subs / student / name
        d.mkdir(parents=True)
        return d / f"{name}.ipynb"

    lab("honest").write_bytes(HONEST.read_bytes())
    lab("linker").symlink_to(SOURCE / "lab1" / "lab1.ipynb")  # the course's own source: full marks, if followed
    lab("leaker").symlink_to(secret)
    os.mkfifo(lab("piper"))
    big = lab("big")
    big.write_bytes(HONEST.read_bytes()[:-2] + b" " * 5000 + b"}\n")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(lab("sockets")))
    (subs / "dirlink").mkdir()
    (subs / "dirlink" / "lab1").symlink_to(subs / "honest" / "lab1")  # a linked lab folder
    (subs / "toplink").symlink_to(subs / "honest")  # a linked student folder
    if os.geteuid() == 0:
        os.mknod(lab("device"), 0o600 | 0o020000, os.makedev(1, 3))  # a character device (/dev/null's)
    try:
        got, problems = _collect_in_time(subs, limit=len(HONEST.read_bytes()) + 1000)
    finally:
        sock.close()
    assert [(s.student, s.lab) for s in got] == [("honest", "lab1")]
    by = {p.where: p.message for p in problems}
    expect = {"linker/lab1": "symbolic link", "leaker/lab1": "symbolic link", "piper/lab1": "FIFO",
              "big/lab1": "larger than", "sockets/lab1": "socket", "dirlink/lab1": "symbolic link",
              "toplink": "symbolic link"}
    if os.geteuid() == 0:
        expect["device/lab1"] = "device"
    assert set(by) == set(expect), by
    for where, why in expect.items():
        assert by[where].startswith("not gradable: ") or "not gradable: " in by[where], by[where]
        assert why in by[where], (where, by[where])
    assert not any("ROOT SECRET" in m or "BEGIN SOLUTION" in m for m in by.values())
    # what is graded is read again through safefs: a swap to a link after collecting is refused too
    (subs / "honest" / "lab1" / "lab1.ipynb").unlink()
    (subs / "honest" / "lab1" / "lab1.ipynb").symlink_to(secret)
    with pytest.raises(OSError):
        got[0].read()


def test_names_with_control_characters_never_reach_the_report_raw(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    (subs / "ok").mkdir(parents=True)
    (subs / "ok" / "lab1\x1b]0;owned\x07\x1b[2J").mkdir()
    (subs / "\x1b[31mred").mkdir()
    _, problems = _collect_in_time(subs)
    text = "\n".join(f"{p.where}: {p.message}" for p in problems)
    assert len(problems) == 2 and "\x1b" not in text and "\x07" not in text
    assert printable("a\x1b[1mb\x1b]8;;http://x\x07c\r\nd\u202ee") == "abc  de"


def _hostile_notebook(release: Path) -> bytes:
    """The student version of lab 1 made odd in every parseable way."""
    nb = nbformat.read(release, as_version=4)
    cells = nb.cells
    cells[0].metadata["nbgrader"] = None  # null
    cells[1].metadata["nbgrader"] = ["not", "a", "dict"]
    graded = [c for c in cells if isinstance(c.metadata.get("nbgrader"), dict) and c.metadata["nbgrader"].get("grade")]
    graded[0].metadata["nbgrader"]["grade_id"] = {"unhashable": True}
    graded[1].outputs = [nbformat.v4.new_output("error", ename="Err\x1b[2J", evalue="\x1b]0;pwned\x07boom\r",
                                                traceback=[])]
    code = next(c for c in cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 3_000_000)] * 50
    code.metadata["deep"] = json.loads("[" * 150 + "]" * 150)
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    c = Course(tmp_path_factory.mktemp("course") / "course")
    c.generate(("lab1",))
    return c


@pytest.mark.parametrize("kind", ["odd", "deep", "not-json"])
def test_a_malformed_notebook_is_that_submissions_problem(course: Course, kind: str, tmp_path: Path) -> None:
    raw = {"odd": _hostile_notebook(course.release("lab1")),
           "deep": b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
           "not-json": b"\x00\x1b[2J not json"}[kind]
    student = f"s-{kind}"
    course.add_students({student})
    results = course.record_grades(student, "lab1", {}, raw)
    assert results and all(not ok for ok, _ in results.values())
    assert not any("\x1b" in reason or "\x07" in reason for _, reason in results.values())
    done = course.autograded(student, "lab1")
    assert done.stat().st_size < 5 << 20, "huge outputs were kept whole"
    nb = nbformat.read(done, as_version=4)
    assert "BEGIN HIDDEN TESTS" not in nbformat.writes(nb)
    reports = build(course, [Outcome(student, "lab1", tasks=results)], [], 60)
    _, txt = write(reports, tmp_path / "out")
    assert "\x1b" not in txt.read_text()


def test_feedback_shows_hidden_tests_only_when_asked(course: Course) -> None:
    course.add_students({"asked", "default"})
    course.record_grades("default", "lab1", {}, HONEST.read_bytes())
    course.record_grades("asked", "lab1", {}, HONEST.read_bytes(), hidden_tests=True)
    assert "BEGIN HIDDEN TESTS" not in course.autograded("default", "lab1").read_text()
    assert "BEGIN HIDDEN TESTS" in course.autograded("asked", "lab1").read_text()
    feedback = course.generate_feedback()  # the whole batch, odd ones included, gets its feedback
    names = {p.parent.parent.name for p in feedback}
    assert {"asked", "default"} <= names
    assert "HIDDEN TESTS" not in course.feedback("default", "lab1").read_text()
