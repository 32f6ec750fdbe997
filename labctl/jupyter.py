"""JupyterLab for the course: the course's kernel (with the lab engine in its environment) and a
server on 127.0.0.1 that opens on the course index."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from . import proc
from .state import REPO, LabPaths, State

__all__ = ["KERNEL_NAME", "kernel_name", "install_kernel", "jupyter_pid", "kernel_env", "start_jupyter", "stop_jupyter"]

KERNEL_NAME = "dockerlab"
INDEX = "notebooks/00-index.ipynb"


def kernel_env(state: State, p: LabPaths) -> dict[str, str]:
    """Environment of everything that talks to the lab engine: kernels, tests, `./lab env`."""
    bindir = p.home / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    link = bindir / "docker"
    # Debian's CLI matches the engine's version; put it first so `!docker` and `%docker` agree.
    if Path(state.docker_cli).exists() and (not link.is_symlink() or os.readlink(link) != state.docker_cli):
        link.unlink(missing_ok=True)
        link.symlink_to(state.docker_cli)
    return {
        "DOCKER_HOST": state.docker_host,
        "LAB_HOME": str(p.home),
        "PATH": f"{bindir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DOCKER_CLI_HINTS": "false",
        "PYTHONPATH": str(REPO),
    }


def kernel_name(p: LabPaths) -> str:
    """``dockerlab`` for the lab in the repository's own ``.lab``; another LAB_HOME (a second lab,
    e.g. in tests) gets its own name, so it never re-points the course's kernel at its engine."""
    if p.home == (REPO / ".lab").resolve():
        return KERNEL_NAME
    return f"{KERNEL_NAME}-{p.run.name.rpartition('-')[2]}"


def install_kernel(state: State, p: LabPaths) -> Path:
    """The course kernel, installed into the venv (sys.prefix), so notebooks find it by name."""
    kdir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / kernel_name(p)
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Docker Lab (Python 3)",
        "language": "python",
        "env": kernel_env(state, p),
        "metadata": {"debugger": True},
    }
    text = json.dumps(spec, indent=1, sort_keys=True)
    target = kdir / "kernel.json"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return kdir


def _course_settings() -> None:
    """JupyterLab defaults for the course: no news or update checks (offline), all cells rendered."""
    target = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    text = json.dumps({
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
        # Render every cell (no virtual scrolling): stored views are all there, and find-in-page works.
        "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    }, indent=1)
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _pidfile(p: LabPaths) -> Path:
    return p.run / "jupyter.pid"


def jupyter_pid(p: LabPaths) -> int | None:
    return proc.running_pid(_pidfile(p), "jupyter-lab")


def start_jupyter(state: State, p: LabPaths, port: int = 8888) -> str:
    """Start JupyterLab (if not running) and return its URL with the token."""
    if jupyter_pid(p) and state.jupyter_url:
        return state.jupyter_url
    port = proc.free_port(port)
    token = secrets.token_hex(16)
    exe = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or "jupyter-lab"
    argv = [exe, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
            f"--ServerApp.root_dir={REPO}", f"--IdentityProvider.token={token}",
            f"--LabApp.default_url=/lab/tree/{INDEX}", "--ServerApp.open_browser=False",
            f"--MappingKernelManager.default_kernel_name={kernel_name(p)}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = p.logs / "jupyter.log"
    _course_settings()
    # Stored widget and SVG outputs render only in trusted (signed) notebooks: the course's own are.
    trust = shutil.which("jupyter-trust", path=str(Path(sys.executable).parent))
    notebooks = sorted(str(x) for x in (REPO / "notebooks").glob("*.ipynb"))
    if trust and notebooks:
        subprocess.run([trust, *notebooks], env={**os.environ, **kernel_env(state, p)},
                       capture_output=True, check=False)
    proc.start(argv, _pidfile(p), log, env=kernel_env(state, p))
    url = f"http://127.0.0.1:{port}/lab/tree/{INDEX}?token={token}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=1):
                return True
        except OSError:
            return False

    proc.wait_for(ready, 60, "JupyterLab", log)
    return url


def stop_jupyter(p: LabPaths) -> bool:
    return proc.stop(_pidfile(p), "jupyter-lab")
