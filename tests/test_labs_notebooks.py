"""The four lab sources are well-formed nbgrader assignments, and their student versions hide
what they must hide; the labs' message catalogue is complete. No engine needed (nbgrader's
generate_assignment runs offline)."""

from __future__ import annotations

import ast
import io
import json
import re
import string
from pathlib import Path

import nbformat
import pytest
from babel.messages.mofile import read_mo

from labcore.state import REPO
from babel.messages.pofile import read_po

from labs.grading import CheckResult, must, tasks
from labs.grading.checks import _plain
from labs.grading.messages import DOMAIN, LOCALE_DIR
from grader.collect import collect
from grader.course import LABS, SOURCE, Course

SAMPLES = Path(__file__).parent / "labs_submissions" / "submitted"


def cells(nb: nbformat.NotebookNode, **want: object) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells
            if all(c.metadata.get("nbgrader", {}).get(k) == v for k, v in want.items())]


@pytest.fixture(scope="module")
def sources() -> dict[str, nbformat.NotebookNode]:
    return {lab: nbformat.read(SOURCE / lab / f"{lab}.ipynb", as_version=4) for lab in LABS}


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab home whose course directory has the student versions (nbgrader generate, once)."""
    home = tmp_path_factory.mktemp("home")
    Course(home / "grading").generate()
    return home


@pytest.fixture(scope="module")
def released(lab_home: Path) -> dict[str, nbformat.NotebookNode]:
    course = Course(lab_home / "grading")
    return {lab: nbformat.read(course.release(lab), as_version=4) for lab in LABS}


def test_self_paced_learner_gets_the_student_versions_once(lab_home, monkeypatch):
    """./lab up puts the labs next to the chapters (their closing links point there); a learner's
    edit survives the next start."""
    from labctl import jupyter
    from labcore.state import paths

    monkeypatch.setenv("LAB_HOME", str(lab_home))
    p = paths()
    copied = jupyter.copy_labs(p)
    assert [c.relative_to(p.course).as_posix() for c in copied] == [f"labs/{lab}/{lab}.ipynb" for lab in LABS]
    for lab in LABS:
        assert ((p.course / "labs" / lab / f"{lab}.ipynb").read_bytes()
                == Course(lab_home / "grading").release(lab).read_bytes())
    mine = p.course / "labs" / "lab1" / "lab1.ipynb"
    nb = nbformat.read(mine, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("my_answer = 42"))
    nbformat.write(nb, mine)
    assert jupyter.copy_labs(p) == []
    assert "my_answer = 42" in mine.read_text()
    links = {(chapter.name, link)
             for chapter in sorted(Path(__file__).parents[1].glob("notebooks/0[1-7]-*.ipynb"))
             for link in re.findall(r"\(\.\./(labs/lab\d/lab\d\.ipynb)\)", chapter.read_text())}
    assert {link for _, link in links} == {f"labs/{lab}/{lab}.ipynb" for lab in LABS}, links
    for chapter, link in links:  # the chapters sit in course/notebooks/
        assert (p.course / link).exists(), f"{chapter} links to {link}, which a learner does not have"


@pytest.mark.parametrize("lab", LABS)
def test_source_is_a_ten_point_assignment_for_the_course_kernel(sources, lab):
    nb = sources[lab]
    assert nb.metadata.kernelspec.name == "dockerlab"
    assert nb.metadata.kernelspec.display_name == "Docker Lab (Python 3)"
    graded = cells(nb, grade=True)
    assert len(graded) == 3
    assert sum(c.metadata.nbgrader.points for c in graded) == 10
    for c in graded:  # every task: a visible self-check and a hidden, independent one
        assert c.metadata.nbgrader.locked
        visible, hidden = c.source.split("### BEGIN HIDDEN TESTS")
        assert "must(" in visible
        assert "independently(" in hidden and "### END HIDDEN TESTS" in hidden
    for c in cells(nb, solution=True):
        assert c.source.startswith("### BEGIN SOLUTION") and c.source.endswith("### END SOLUTION")
    assert re.search(r"[\u4e00-\u9fff]", nb.cells[0].source), "instructions are in Chinese"


@pytest.mark.parametrize("lab", LABS)
def test_source_is_stored_executed_without_errors(sources, lab):
    for c in sources[lab].cells:
        if c.cell_type == "code":
            assert c.execution_count is not None, c.id
            assert not [o for o in c.outputs if o.output_type == "error"], c.id
    ticks = [o.text for c in cells(sources[lab], grade=True) for o in c.outputs if "text" in o]
    assert len(ticks) == 3 and all(t.startswith("✔") for t in ticks)


@pytest.mark.parametrize("lab", LABS)
def test_student_version_hides_solutions_and_hidden_tests(released, lab):
    nb = released[lab]
    text = json.dumps(nb, ensure_ascii=False)
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert "assert independently(" not in text
    for c in cells(nb, solution=True):
        assert "raise NotImplementedError()" in c.source
    for c in cells(nb, grade=True):
        assert c.metadata.nbgrader.get("checksum"), "locked test cells carry nbgrader's checksum"
        assert not c.outputs


def test_given_constants_match_the_checks(sources):
    setup = next(c.source for c in sources["lab3"].cells if c.id == "setup")
    assert f'PAGE = "{tasks.PAGE}"' in setup
    assert f'AUTHOR = "{tasks.AUTHOR}"' in setup
    assert f'MESSAGE = "{tasks.MESSAGE}"' in setup
    assert f"PORT = {tasks.PORT}" in setup


def test_collect_reports_what_cannot_be_graded():
    subs, problems = collect(SAMPLES)
    found = {(s.student, s.lab) for s in subs}
    assert ("alice", "lab1") in found and ("eve", "lab1") in found
    assert not {("frank", "lab1"), ("frank", "lab2")} & found
    by_where = {p.where: p for p in problems}
    assert set(by_where) == {"frank/lab1", "frank/lab2", "grace/lab-3"}
    assert "JSON" in by_where["frank/lab1"].message
    assert "lab2.ipynb" in by_where["frank/lab2"].message and "实验2-副本.ipynb" in by_where["frank/lab2"].message
    assert "lab3" in by_where["grace/lab-3"].message.split("lab-3")[1]  # "did you mean lab3"
    assert by_where["grace/lab-3"].student == "grace"


def test_collect_a_missing_folder(tmp_path):
    subs, problems = collect(tmp_path / "nope")
    assert not subs and len(problems) == 1


def test_must_prints_and_raises(capsys):
    must(CheckResult(True, "好"))
    with pytest.raises(AssertionError, match="不好"):
        must(CheckResult(False, "不好"))
    assert capsys.readouterr().out == "✔ 好\n✘ 不好\n"


def test_answers_travel_as_json():
    assert _plain(({"b", "a"}, (1, 2), {"k": None})) == [["a", "b"], [1, 2], {"k": None}]


# -- the labs' gettext catalogue (domain "labs", registered with kernel_ext.messages.add_catalogue) --


def _catalogue(lang: str, kind: str = "po") -> dict[str, str]:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.{kind}"
    with open(path, "rb") as f:
        cat = read_po(f) if kind == "po" else read_mo(io.BufferedReader(f))  # type: ignore[arg-type]
    return {str(m.id): str(m.string) for m in cat if m.id}


def _used() -> set[str]:
    """The key of every ``t("key", ...)`` call in the labs' code (a literal, or the key is a bug)."""
    keys = set()
    code = [*LOCALE_DIR.parent.rglob("*.py"), *(REPO / "grader").rglob("*.py"),
            *(REPO / "asroot" / "grading").rglob("*.py")]
    for path in code:  # the labs' checks, the grader and root's grading all speak the domain "labs"
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "t":
                assert isinstance(n.args[0], ast.Constant), f"{path}:{n.lineno}: a key must be a literal"
                keys.add(n.args[0].value)
    return keys


def test_every_key_used_exists_in_both_languages_and_none_is_dead():
    zh, en = _catalogue("zh_CN"), _catalogue("en")
    assert zh.keys() == en.keys() and len(zh) > 50
    used = _used()
    assert not used - zh.keys(), "keys used but not in labs/locale"
    assert not zh.keys() - used, "keys in labs/locale that no code uses"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_mo_matches_po_and_fields_agree(lang):
    assert _catalogue(lang, "mo") == _catalogue(lang), "run: .venv/bin/pybabel compile -d labs/locale -D labs"

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    other = _catalogue("en" if lang == "zh_CN" else "zh_CN")
    assert {k: fields(v) for k, v in _catalogue(lang).items()} == {k: fields(v) for k, v in other.items()}
