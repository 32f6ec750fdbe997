"""Run a command as another local account (root only)."""

from __future__ import annotations

import subprocess


def run_as(user: str, *cmd: str, env: dict[str, str] | None = None,
           timeout: int = 120) -> subprocess.CompletedProcess[str]:
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    return subprocess.run(["runuser", "-u", user, "--", "env", "HOME=/tmp", *extra, *cmd],
                          capture_output=True, text=True, timeout=timeout, cwd="/")
