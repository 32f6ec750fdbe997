"""The project's own code habits, checked like everything else: ruff (lint) and mypy (types),
both configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labctl.state import REPO

BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    r = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "kernel_ext", "labctl", "labs", "courseimage",
                        "tests"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_the_examples_in_docstrings_hold() -> None:
    """Doctests: where an example explains a function best, it is also checked."""
    import doctest
    import importlib
    import pkgutil

    import kernel_ext
    import labctl
    import labs.grading

    ran = 0
    for pkg in (labctl, kernel_ext, labs.grading):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if mod.name.endswith("__main__"):
                continue
            result = doctest.testmod(importlib.import_module(mod.name), optionflags=doctest.ELLIPSIS)
            assert result.failed == 0, mod.name
            ran += result.attempted
    assert ran >= 5


def test_mypy_is_clean(tmp_path: Path) -> None:
    r = subprocess.run([str(BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy-cache")], cwd=REPO,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
