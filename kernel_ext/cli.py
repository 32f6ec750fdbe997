"""The docker command line against the lab's engine, streamed line by line: one runner for the
``%docker`` magic's plain form and its shell form (``$(…)``, pipes), usable without IPython.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO, Any

from .connection import lab_config
from .errors import ToolMissing

__all__ = ["cli_env", "run", "run_shell"]


def cli_env() -> dict[str, str]:
    """The environment a docker CLI needs for the lab's engine (its own binary first on PATH)."""
    cfg = lab_config()
    return {**os.environ, "DOCKER_HOST": cfg.docker_host, "DOCKER_CLI_HINTS": "false",
            "PATH": f"{os.path.dirname(cfg.docker_cli) or '/usr/bin'}:{os.environ.get('PATH', '')}"}


def _stream(argv: list[str], out: IO[str] | Any | None) -> int:
    out = out or sys.stdout
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=cli_env(), text=True, bufsize=1)
    except FileNotFoundError as e:
        raise ToolMissing("cli.missing") from e
    assert proc.stdout is not None
    for line in proc.stdout:
        out.write(line)
        out.flush()
    return proc.wait()


def run(args: list[str], out: IO[str] | Any | None = None) -> int:
    """``docker ARGS`` against the lab's engine, output streamed to ``out``; returns the exit code."""
    return _stream([lab_config().docker_cli, *args], out)


def run_shell(line: str, out: IO[str] | Any | None = None) -> int:
    """``docker LINE`` through bash, for the book's ``$(…)`` and pipes; streamed the same way."""
    return _stream(["bash", "-c", f"docker {line}"], out)
