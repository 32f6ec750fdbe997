"""``.devcontainer/devcontainer.json`` with the Dev Containers CLI (``@devcontainers/cli`` from npm),
against the throwaway engine that plays Docker Desktop (as VS Code and Codespaces use the file):
``devcontainer up``, then chapter 1's first exercise passes in the course kernel.

The CLI is ``LAB_DEVCONTAINER_CLI``, one on PATH, or installed from npm for the run (``conftest.py``).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from labcore.state import REPO

from .imageutil import CLI, Docker, JupyterServer, first_exercise, wait_for_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root")


def test_devcontainer_up_then_the_first_exercise_passes(desktop: Docker, devcontainer_cli: str) -> None:
    env = {**os.environ, "DOCKER_HOST": desktop.host}
    r = subprocess.run([devcontainer_cli, "up", "--docker-path", CLI, "--workspace-folder", str(REPO),
                        "--remove-existing-container"],
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
