"""The floor plan, checked: dependencies point down only, and root's code is one wing.

Layers, lowest first (a module may import its own package — relative imports stay inside it — and any package below
it, never above; function-local imports included, so none can hide a cycle):

    labcore < labengine < kernel_ext < labs < grader < labctl < courseimage < classroom < asroot

``tests/support`` (test clients, ``./lab test``'s orchestration) stands above them all and is not product
code: no product module imports it, except root's ``./lab test`` entry, which runs the suites.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labcore.state import REPO

LAYERS = ["labcore", "labengine", "kernel_ext", "labs", "grader", "labctl", "courseimage", "classroom", "asroot"]
RANK = {name: i for i, name in enumerate(LAYERS)}
# module -> the one higher-layer package it may import, and why (each one a test entry point, not a cycle)
ALLOWED_UP = {"asroot/__main__.py": {"tests"}}  # `sudo ./lab test` runs tests/support/suite.py


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def _modules() -> list[tuple[str, Path]]:
    return [(pkg, p) for pkg in LAYERS for p in sorted((REPO / pkg).rglob("*.py"))
            if "source" not in p.relative_to(REPO).parts]  # labs/source: nbgrader's notebooks' conftest


@pytest.mark.parametrize("pkg", LAYERS)
def test_dependencies_point_down_only(pkg: str) -> None:
    wrong = []
    for owner, path in _modules():
        if owner != pkg:
            continue
        rel = str(path.relative_to(REPO))
        for line, top in _imports(path):
            if top in RANK and RANK[top] > RANK[pkg]:
                wrong.append(f"{rel}:{line}: {pkg} imports {top}, a layer above it")
            elif top == "tests" and top not in ALLOWED_UP.get(rel, set()):
                wrong.append(f"{rel}:{line}: product code imports the tests")
    assert not wrong, "\n".join(wrong)


def test_the_core_imports_only_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted((REPO / "labcore").rglob("*.py")):
        for line, top in _imports(path):
            assert top in stdlib or top == "labcore", f"{path.relative_to(REPO)}:{line}: imports {top}"


def test_the_course_kernel_has_one_spec() -> None:
    """Every place that installs the course kernel (a lab home, a grading sandbox) writes labcore.kernelspec's
    spec: a second copy had missed what the first learned (the oom_score_adj raise)."""
    writers = []
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            text = path.read_text()
            if "ipykernel_launcher" in text or '"display_name": "Docker Lab' in text:
                writers.append(str(path.relative_to(REPO)))
    assert writers == ["labcore/kernelspec.py"]


def test_no_product_code_is_left_at_the_old_addresses() -> None:
    """What moved (labctl's root and classroom modules, labs.grading's root side) is not also still there."""
    gone = ["labctl/system.py", "labctl/classroom.py", "labctl/gradeaccounts.py", "labctl/proc.py", "labctl/state.py",
            "labctl/hostcheck.py", "labctl/classroom_client.py", "labs/grading/runner.py", "labs/grading/sandbox.py",
            "labs/grading/checkd.py", "labs/grading/cli.py"]
    assert [g for g in gone if (REPO / g).exists()] == []


def test_root_runs_the_wing_and_the_account_runs_the_launcher() -> None:
    """The bash launcher hands root to ``python -m asroot`` and everyone else to ``python -m labctl``; the
    launcher refuses to run as root on its own, and root's dispatcher refuses anyone else."""
    launcher = (REPO / "lab").read_text()
    assert 'exec "$py" -m asroot "$@"' in launcher and 'exec "$py" -m labctl "$@"' in launcher
    if sys.platform != "linux":
        return
    import os

    env = {**os.environ, "LAB_AS_ACCOUNT": ""}
    r = subprocess.run([sys.executable, "-m", "asroot" if os.geteuid() != 0 else "labctl", "status"], cwd=REPO,
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_every_command_has_its_own_help() -> None:
    for argv, expect in ((["grade", "--help"], "autograde"), (["classroom", "--help"], "collect"),
                         (["up", "--help"], "--no-jupyter")):
        r = subprocess.run([sys.executable, "-m", "labctl", *argv], cwd=REPO, capture_output=True, text=True,
                           timeout=60, env={**__import__("os").environ, "LAB_AS_ACCOUNT": "1"})
        assert r.returncode == 0 and expect in r.stdout, (argv, r.stdout[-500:], r.stderr[-500:])


def _names_imported(path: Path) -> list[tuple[int, str]]:
    """Every module an import in ``path`` names, relative ones resolved against ``path``'s package."""
    pkg = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            out += [(node.lineno, f"{mod}.{a.name}" if not node.module or node.level and not node.module else mod)
                    for a in node.names]
    return out


def test_the_learners_models_never_import_their_views() -> None:
    """kernel_ext's models and API take snapshots; its views (``kernel_ext/views``) render them. A model
    names its view (``__view__``) and ``kernel_ext.display`` imports it on the first display; only the
    package's facade (``__init__``) and the IPython layer (``magics``) import views directly."""
    facade = {"kernel_ext/__init__.py", "kernel_ext/magics.py"}
    wrong = []
    for path in sorted((REPO / "kernel_ext").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel.startswith("kernel_ext/views/") or rel in facade:
            continue
        wrong += [f"{rel}:{line}: imports {name}" for line, name in _names_imported(path)
                  if name.startswith("kernel_ext.views")]
    assert not wrong, "\n".join(wrong)


def test_views_never_call_the_engine() -> None:
    for path in sorted((REPO / "kernel_ext" / "views").rglob("*.py")):
        bad = [name for _, name in _names_imported(path) if name.split(".")[0] == "docker"
               or name in ("kernel_ext.lab", "kernel_ext.connection")]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


ROOT_ONLY = re.compile(r"\bos\.(f?chown|setuid|setgid|setres[ug]id|setgroups|initgroups)\(|\b(useradd|usermod|userdel|"
                       r"groupadd|groupdel|runuser)\b|/etc/(sudoers|cron|at\.deny|ssh)")


def test_what_only_root_can_do_is_done_in_roots_wing() -> None:
    """Changing owners or identities, making accounts, writing the system's files: ``asroot`` only, so a
    reader lists what runs as root from the tree (``labcore.subids`` only reads /etc/subuid)."""
    readers = {"labcore/subids.py"}
    wrong = []
    for pkg in LAYERS[:-1]:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            if rel in readers or "source" in path.parts:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                # mmdebstrap's hooks act on the image being built (its own chroot), not on this machine
                inside_image = rel.startswith("courseimage/") and "--customize-hook=" in line
                if ROOT_ONLY.search(line) and not line.lstrip().startswith("#") and not inside_image:
                    wrong.append(f"{rel}:{n}: {line.strip()[:100]}")
    assert not wrong, "\n".join(wrong)
