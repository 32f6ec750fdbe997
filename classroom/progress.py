"""Which self-check exercises a class member passes now, computed from their engine — not reported by
their kernel. Run as the member (the classroom's progress service does it through sudo):

    python -m classroom.progress          # JSON: {"06": {"1": "pass", "2": "fail", ...}, ...}

The exercises are the course's own (``notebooks/src/*.md``, cells tagged ``check`` under a
"练习 N" heading). Each check cell is run here, on its own, against the member's engine; a check that
needs what the learner typed in their kernel (a variable) cannot be judged from outside: ``"n/a"``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from labctl import authoring

__all__ = ["Exercise", "evaluate", "exercises"]

_TITLE = re.compile(r"练习\s*(\d+)\s*[：:]\s*(.+)")


@dataclass(frozen=True)
class Exercise:
    chapter: str  # "06"
    number: str  # "2"
    title: str
    check: str  # the check cell's source


def exercises(only: list[str] | None = None) -> list[Exercise]:
    out = []
    for ch in authoring.chapters(only=only):
        title, number = "", ""
        for cell in authoring.read_source(ch).cells:
            first = cell.source.lstrip().split("\n", 1)[0]
            if cell.cell_type == "markdown" and first.startswith("#"):
                m = _TITLE.search(first)
                title, number = (m.group(2).strip(), m.group(1)) if m else ("", "")
            elif cell.cell_type == "code" and "check" in cell.metadata.get("tags", []) and number:
                out.append(Exercise(ch.number, number, title, cell.source))
    return out


def _judge(ex: Exercise, namespace: dict[str, Any]) -> str:
    """Run one check cell: ``pass``, ``fail``, or ``n/a`` (it needs the learner's own variables)."""
    import ast

    tree = ast.parse(ex.check)
    last = tree.body[-1] if tree.body else None
    ns = dict(namespace)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if isinstance(last, ast.Expr):
                exec(compile(ast.Module(tree.body[:-1], []), "<check>", "exec"), ns)
                result = eval(compile(ast.Expression(last.value), "<check>", "eval"), ns)
            else:
                exec(compile(tree, "<check>", "exec"), ns)
                result = None
    except NameError:
        return "n/a"
    except AssertionError:
        return "fail"
    except Exception:  # noqa: BLE001 - any other failure of the check is a failed check
        return "fail"
    if result is None:
        return "n/a"
    return "pass" if bool(getattr(result, "ok", result)) else "fail"


def evaluate(only: list[str] | None = None) -> dict[str, dict[str, str]]:
    """Every exercise's state on this account's lab engine."""
    from kernel_ext import check, connect, registry
    from kernel_ext.errors import LabError

    try:
        lab = connect(session="progress")
    except LabError:
        return {}
    namespace: dict[str, Any] = {"check": check, "lab": lab, "registry": registry}
    try:  # the chapters' state-aware checks (``checks = exercises.start(lab)`` in each setup cell)
        from kernel_ext import exercises as _ex

        # Since the beginning: the service cannot know when the learner opened the chapter.
        namespace["checks"] = _ex.Exercises(lab, since=0.0)
    except ImportError:
        pass
    out: dict[str, dict[str, str]] = {}
    for ex in exercises(only):
        out.setdefault(ex.chapter, {})[ex.number] = _judge(ex, namespace)
    return out


def classroom_state() -> str:
    """In a classroom (root's gate runs this as the member, in their namespace): where the member's
    engine and registries are, from what root and the classroom made — the member's passwd entry, the
    class's root-owned configuration, the server's fixed layout — never from the member's own lab
    state file, which they can edit. Written to a private lab home of this run, which kernel_ext reads.
    "" when the member's engine has not started (it starts on their first Docker command): asking it
    would start it, and nothing can pass yet."""
    import os
    import pwd
    import tempfile
    from pathlib import Path

    from classroom.config import ClassConfig
    from classroom.server import engine_started, registry_port
    from labengine.enginepkgs import EngineBinaries
    from labcore.state import State, paths, save_state

    from classroom.config import member_run

    me = pwd.getpwuid(os.getuid())
    os.environ["XDG_RUNTIME_DIR"] = str(member_run(me.pw_uid))  # as root's gate gives the member's server
    os.environ.pop("DOCKER_HOST", None)
    os.environ["LAB_HOME"] = str(Path(me.pw_dir) / ".dockerlab")
    run = paths().run  # as classroom_server laid it out: the engine "lab", the registries beside it
    if not engine_started(run):
        return ""
    cfg = ClassConfig.load()
    state = State(engine="lab", docker_host=f"unix://{run / 'lab.sock'}", upstream=cfg.mirror, mirror=cfg.mirror,
                  docker_cli=EngineBinaries(root=cfg.engine_root, version="", source="", packages={}).docker,
                  registry=f"127.0.0.1:{registry_port(me.pw_uid)}",
                  publisher=f"unix://{run / 'registry-own-upstream.sock'}")
    os.environ["LAB_HOME"] = home = tempfile.mkdtemp(prefix="dockerlab-progress-")
    save_state(state)
    return home


if __name__ == "__main__":
    import shutil

    args = sys.argv[1:]
    classroom = args[:1] == ["--classroom"]
    own = classroom_state() if classroom else ""
    try:
        json.dump({} if classroom and not own else evaluate((args[1:] if classroom else args) or None), sys.stdout)
        print()
    finally:
        if own:
            shutil.rmtree(own, ignore_errors=True)
