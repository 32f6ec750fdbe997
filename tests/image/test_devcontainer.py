"""``.devcontainer/devcontainer.json`` with the Dev Containers CLI (``@devcontainers/cli`` from npm),
against the throwaway engine that plays Docker Desktop (as VS Code and Codespaces use the file):
``devcontainer up``, then chapter 1's first exercise passes in the course kernel.

Opt-in like the rest of tests/image; the CLI is found at ``LAB_DEVCONTAINER_CLI`` or on PATH
(``npm install --prefix /var/tmp/devc @devcontainers/cli``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from labcore.state import REPO

from .imageutil import Docker, JupyterServer, first_exercise, wait_for_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root")

CLI = os.environ.get("LAB_DEVCONTAINER_CLI") or shutil.which("devcontainer") or ""


def test_devcontainer_up_then_the_first_exercise_passes(desktop: Docker) -> None:
    if not CLI:
        pytest.fail("The Dev Containers CLI is missing: npm install --prefix /var/tmp/devc @devcontainers/cli, "
                    "then LAB_DEVCONTAINER_CLI=/var/tmp/devc/node_modules/.bin/devcontainer")
    env = {**os.environ, "DOCKER_HOST": desktop.host}
    r = subprocess.run([CLI, "up", "--workspace-folder", str(REPO), "--remove-existing-container"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    container = result["containerId"]
    try:
        assert result["outcome"] == "success" and result["remoteUser"] == "learner", result
        token, _ = wait_for_url(desktop, container)
        # VS Code forwards 8888; the CLI does not: the engine's bridge reaches the container directly
        ip = desktop("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container).stdout
        before, after, who = first_exercise(JupyterServer(8888, token, host=ip.strip()))
        assert "✘" in before and "✔" in after, (before, after)
        assert who.split() == ["learner", "1000"], who
    finally:
        desktop("rm", "-f", container, check=False)
        desktop("volume", "rm", "dockerlab-work", check=False)
