"""Hints in tiers, recap questions, and the chapters' teaching conventions (AUTHORING.md, "Hints, recap and
常见报错"): plain Python, no engine, no IPython.

- an exercise's failed check gives the nudge first, the command's shape from the second failure on, and
  never the full answer (that waits in the notebook's <details> ✓ 参考答案);
- every exercise has both hints in the catalogue and every hint belongs to an exercise;
- no check output stored in a committed notebook names the answer;
- each chapter ends with 3–5 recap questions (checked by kernel_ext.recap) and a 常见报错 box;
- a terminal exercise says 「在终端里做」 where the learner's cell is, with no code cell to type into.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel_ext.check import CheckResult
from kernel_ext.exercises import OPEN, Exercises
from kernel_ext.messages import keys, t
from kernel_ext.recap import KEYS, Recap

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted((REPO / "notebooks" / "src").glob("[0-9][0-9]-*.md"))
CHAPTERS = [p for p in SOURCES if not p.name.startswith("00")]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
EXERCISE = re.compile(r"^### ✍️? ?练习 (\d+)", re.M)
ANSWER = re.compile(r"<summary>✓ 参考答案.*?</summary>\s*```(python|bash)\n(.*?)```", re.S)


def _checks(chapter: str = "03") -> Exercises:
    return Exercises(SimpleNamespace(api=None), since=0, chapter=chapter)


def test_a_check_gives_the_nudge_first_then_the_shape_never_the_answer() -> None:
    checks = _checks()
    missing = CheckResult(False, t("ex.img.missing", ref="dockerlab/greeting:stable"), key="ex.img.missing")
    first = checks.ex(1).all(missing)
    assert not first and first.tier == 1
    assert first.reason == f"本地没有镜像 dockerlab/greeting:stable → {t('hint.ch03.ex1.1')}"
    second = checks.ex(1).all(missing)
    assert second.tier == 2 and t("hint.ch03.ex1.2") in second.reason and "参考答案" in second.reason
    assert checks.ex(1).all(missing).tier == 2  # stays at the shape
    for r in (first, second):
        assert "docker tag dockerlab/greeting:v2 dockerlab/greeting:stable" not in r.reason
    # exercises count apart
    assert checks.ex(2).all(missing).tier == 1 and checks.failures == {1: 3, 2: 1}


def test_a_known_mistake_keeps_its_own_advice_and_a_pass_is_noted() -> None:
    checks = _checks()
    mistake = CheckResult(False, t("ex.ctr.unnamed", name="ch03-x", image="busybox:1.35", other="odd_name"),
                          key="ex.ctr.unnamed")
    assert "ex.ctr.unnamed" not in OPEN
    r = checks.ex(3).all(mistake)
    assert r.reason == mistake.reason and r.tier == 1
    ok = checks.ex(3).all(CheckResult(True, "好", key="ex.ok"))
    assert ok and ok.reason == "好" and checks.passed == {3}


def test_open_reasons_name_no_step_of_their_own() -> None:
    """What replaces an open reason's step is the exercise's hint: the catalogue gives none to replace."""
    for key in OPEN:
        for lang in ("zh", "en"):
            assert "→" not in t(key, lang=lang, name="n", ref="r", others="o", other="o", actual="a", want="w",
                                path="p", where="", file="f"), key


def _exercises(path: Path) -> list[int]:
    return [int(n) for n in EXERCISE.findall(path.read_text())]


def test_every_exercise_has_both_hints_and_every_hint_an_exercise() -> None:
    wanted = {f"hint.ch{p.name[:2]}.ex{n}.{tier}" for p in CHAPTERS for n in _exercises(p) for tier in (1, 2)}
    have = {k for k in keys() if k.startswith("hint.")}
    assert wanted - have == set(), "exercises without hints in kernel_ext/locale/*/kernel_ext.po"
    assert have - wanted == set(), "hints for no exercise"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name[:2])
def test_each_check_cell_names_its_exercise(path: Path) -> None:
    text = path.read_text()
    number = path.name[:2]
    assert f'exercises.start(lab, "{number}")' in text
    for part in re.split(r"(?=^### ✍)", text, flags=re.M)[1:]:
        n = EXERCISE.match(part).group(1)  # type: ignore[union-attr]
        check = re.search(r"```\{code-cell\}\n:tags: \[check\]\n\n(.*?)```", part, re.S)
        assert check and check.group(1).startswith(f"checks.ex({n})."), (number, n)
        assert "☞ 提示" not in part, "the hints are the check's tiers now, not a <details> above the answer"


def _solution_lines(md: str) -> list[str]:
    """The commands of a reference answer, as they would appear in a check's output."""
    out = []
    for line in md.strip().splitlines():
        line = line.strip().lstrip("%!").strip()
        if len(line) >= 12 and not line.startswith(("#", "import ", "with ", "exit")):
            out.append(re.sub(r"\s+", " ", line))
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_stored_check_output_names_the_answer(notebook: Path) -> None:
    nb = json.loads(notebook.read_text())
    cells = nb["cells"]
    leaks = []
    for i, cell in enumerate(cells):
        if "check" not in cell.get("metadata", {}).get("tags", []):
            continue
        answer = next((ANSWER.search("".join(c["source"])) for c in cells[i + 1:i + 4]
                       if c["cell_type"] == "markdown" and ANSWER.search("".join(c["source"]))), None)
        assert answer, f"{cell['id']}: no ✓ 参考答案 after the check"
        shown = re.sub(r"\s+", " ", " ".join(
            "".join(o.get("text") or o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])))
        leaks += [f"{cell['id']}: {line}" for line in _solution_lines(answer.group(2)) if line in shown]
    assert not leaks, "stored check outputs that print the reference answer:\n" + "\n".join(leaks)


def test_the_leak_test_can_fail() -> None:
    shown = "✘ 本地没有镜像 x → docker tag dockerlab/greeting:v2 dockerlab/greeting:stable"
    assert any(line in shown for line in _solution_lines("%docker tag dockerlab/greeting:v2 dockerlab/greeting:stable"))


# -- recap -------------------------------------------------------------------------------------------
def test_recap_checks_answers_without_giving_them() -> None:
    r = Recap("03")
    blank = r.check({})
    assert not blank and blank.reason.count("还没作答") == len(KEYS["03"])
    right = {n: key for n, (key, _) in enumerate(KEYS["03"], start=1)}
    wrong = {1: "D" if right[1] != "D" else "A"}
    once = r.check(wrong)
    assert not once and f"选 {wrong[1]}" in once.reason and "再读一读 3.3 节" in once.reason
    assert "答案与解释" in r.check(wrong).reason  # the second wrong answer points at the explanation
    assert all(f"选 {right[1]}" not in x.reason for x in (once,))
    assert r.check(right).ok and r.check({n: v.lower() for n, v in right.items()}).ok


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name[:2])
def test_each_chapter_ends_with_recap_questions_and_a_box_of_common_errors(path: Path) -> None:
    number, text = path.name[:2], path.read_text()
    assert number in KEYS, f"kernel_ext/recap.py has no answers for chapter {number}"
    recap = text.split("\n## 回顾\n", 1)
    assert len(recap) == 2, "no '## 回顾' section"
    body = recap[1].split("\n## ", 1)[0]
    questions = re.findall(r"^(\d+)\. ", body.split("```")[0], re.M)
    assert 3 <= len(questions) <= 5 and questions == [str(i) for i in range(1, len(questions) + 1)]
    assert len(KEYS[number]) == len(questions)
    assert f'recap("{number}")' in body and ":tags: [recap]" in body
    explained = re.search(r"<summary>答案与解释</summary>(.*?)</details>", body, re.S)
    assert explained, "no <details> 答案与解释"
    letters = re.findall(r"^(\d+)\. ([A-D])\b", explained.group(1), re.M)
    assert letters == [(str(i), key) for i, (key, _) in enumerate(KEYS[number], start=1)], \
        "the explanations and kernel_ext/recap.py disagree"
    assert re.search(r"^> \*\*⚠ 常见报错\*\*", text, re.M), "no '> **⚠ 常见报错**' box"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name[:2])
def test_a_terminal_exercise_has_no_code_cell_to_type_into(path: Path) -> None:
    for part in re.split(r"(?=^### ✍)", path.read_text(), flags=re.M)[1:]:
        answer = ANSWER.search(part)
        assert answer
        work = part.split("```{code-cell}\n:tags: [check]")[0]
        if answer.group(1) == "bash":
            assert "```{code-cell}" not in work and "在终端里做" in work, part.splitlines()[0]
        else:
            assert "```{code-cell}\n:tags: [exercise]" in work, part.splitlines()[0]
