"""The layout's rules, checked on the code itself (AST, no root needed).

Root's wing opens paths only through :mod:`labcore.safefs` (issue 19, "one safe-filesystem layer that
all root code uses"): a link, a FIFO or a device another account planted is then never followed, waited
on or read whole, because the only code that opens anything is the code that refuses them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Ways of opening, reading, writing, copying or removing a path that do not go through labcore.safefs.
_PATH_METHODS = {"open", "read_text", "read_bytes", "write_text", "write_bytes"}
_MODULE_CALLS = {
    "os": {"open"},
    "io": {"open"},
    "shutil": {"copy", "copy2", "copyfile", "copytree", "rmtree", "move"},
    "nbformat": {"read", "write"},
    "tarfile": {"open"},
    "zipfile": {"ZipFile"},
    "tempfile": {"mkstemp", "NamedTemporaryFile", "TemporaryFile"},
}

# file -> (what, why): the only calls allowed to open a path some other way. Keep this short.
EXEMPT: dict[str, tuple[str, str]] = {
    "asroot/classroom.py:_write_hub_file": ("tempfile.mkstemp", "O_EXCL in the hub's own directory, then fchown/fchmod "
                                            "on the fd and rename: the same idea as safefs.write_private, for "
                                            "another owner"),
}


def _unsafe_calls(path: Path, source: str | None = None) -> list[str]:
    """``file:line call`` for every call in ``path`` that opens a path without labcore.safefs."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    rel = path.relative_to(REPO).as_posix()
    found = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def owner(node: ast.AST) -> str:
        inner = [f.name for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]
        return f"{rel}:{inner[-1] if inner else '<module>'}"

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        what = ""
        if isinstance(fn, ast.Name) and fn.id == "open":
            what = "open"
        elif isinstance(fn, ast.Attribute):
            base = fn.value
            if isinstance(base, ast.Name) and base.id == "safefs":
                continue
            if isinstance(base, ast.Name) and fn.attr in _MODULE_CALLS.get(base.id, set()):
                what = f"{base.id}.{fn.attr}"
            elif fn.attr in _PATH_METHODS and not (isinstance(base, ast.Name) and base.id in _MODULE_CALLS):
                what = f".{fn.attr}"
        if not what:
            continue
        where = owner(node)
        if where in EXEMPT and EXEMPT[where][0] == what:
            continue
        found.append(f"{rel}:{node.lineno} {ast.unparse(node)[:100]}")
    return found


def test_root_wing_opens_paths_only_through_safefs() -> None:
    files = sorted((REPO / "asroot").rglob("*.py"))
    assert len(files) >= 10
    found = [hit for f in files for hit in _unsafe_calls(f)]
    assert not found, ("root's wing opens these paths without labcore.safefs (use a safefs helper, or add a "
                       "one-line reason to EXEMPT):\n" + "\n".join(found))


def test_the_submissions_reader_opens_only_through_safefs() -> None:
    """grader.collect reads what learners handed in, as root: the same rule."""
    assert _unsafe_calls(REPO / "grader" / "collect.py") == []


def test_the_layout_scan_catches_each_way_of_opening() -> None:
    """The scan itself: each kind of call it must catch is caught (so the two tests above can fail)."""
    probe = REPO / "asroot" / "_probe_for_test_layout.py"
    code = ("import os, shutil, nbformat\nfrom pathlib import Path\nfrom labcore import safefs\n"
            "open('/x')\nPath('/x').read_text()\nPath('/x').write_bytes(b'')\nos.open('/x', 0)\n"
            "shutil.copytree('/a', '/b')\nshutil.rmtree('/a')\nnbformat.read('/x', as_version=4)\n"
            "safefs.read_private(Path('/x'))\n")
    hits = _unsafe_calls(probe, code)
    assert len(hits) == 7, hits  # every call but safefs's


def test_exemptions_still_exist() -> None:
    """An exemption for code that is gone is removed from EXEMPT."""
    for where in EXEMPT:
        file, func = where.split(":")
        tree = ast.parse((REPO / file).read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == func for n in ast.walk(tree)), where


def test_safefs_is_stdlib_only() -> None:
    tree = ast.parse((REPO / "labcore" / "safefs.py").read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert mods - {"__future__", "labcore"} <= set(sys.stdlib_module_names), mods
