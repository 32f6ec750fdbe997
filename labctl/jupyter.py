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

from labcore import kernelspec, proc
from labcore.state import REPO, LabPaths, State

__all__ = ["KERNEL_NAME", "NBGRADER_LAB_OFF", "NBGRADER_OFF", "copy_course", "copy_labs", "install_kernel",
           "jupyter_env", "jupyter_pid", "kernel_env", "learner_config", "start_jupyter", "stop_jupyter"]

KERNEL_NAME = kernelspec.NAME
INDEX = "notebooks/00-index.ipynb"

# nbgrader's tools (the Nbgrader menu, Create Assignment, Formgrader) are the instructor's: a learner's
# JupyterLab loads neither its server extensions (each module by the name nbgrader's own
# jupyter_server_config.d enables it under: turning off "nbgrader" alone leaves them on) nor its labextension.
NBGRADER_OFF = {"ServerApp": {"jpserver_extensions": dict.fromkeys(
    ("nbgrader", *(f"nbgrader.server_extensions.{m}"
                   for m in ("formgrader", "assignment_list", "course_list", "validate_assignment"))), False)}}
NBGRADER_LAB_OFF = {"disabledExtensions": {"@jupyter/nbgrader": True}}


def kernel_env(state: State, p: LabPaths) -> dict[str, str]:
    """Environment of everything that talks to the lab engine: kernels, terminals, tests, `./lab env`."""
    bindir = p.home / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    link = bindir / "docker"
    # The engine's own CLI first, so `!docker`, `%docker` and the terminal agree with the engine.
    if Path(state.docker_cli).exists() and (not link.is_symlink() or os.readlink(link) != state.docker_cli):
        link.unlink(missing_ok=True)
        link.symlink_to(state.docker_cli)
    return {
        "DOCKER_HOST": state.docker_host,
        "DOCKER_CONFIG": str(docker_config(state, p)),
        "LAB_HOME": str(p.home),
        "PATH": f"{bindir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DOCKER_CLI_HINTS": "false",
        "PYTHONPATH": str(REPO),
    }


def docker_config(state: State, p: LabPaths) -> Path:
    """The CLI's config directory: finds the engine's buildx plugin (it is not installed system-wide)."""
    d = p.home / "docker-config"
    d.mkdir(exist_ok=True)
    plugins = Path(state.docker_cli).parent.parent / "libexec" / "docker" / "cli-plugins"
    cfg = json.dumps({"cliPluginsExtraDirs": [str(plugins)]} if plugins.is_dir() else {}, indent=1)
    f = d / "config.json"
    if not f.exists() or f.read_text() != cfg:
        f.write_text(cfg)
    return d


def jupyter_env(p: LabPaths) -> dict[str, str]:
    """Jupyter's own files live in the lab's home (0700): config with the token, kernels, runtime."""
    j = p.jupyter
    return {
        "JUPYTER_CONFIG_DIR": str(j / "config"),
        "JUPYTER_DATA_DIR": str(j / "data"),
        "JUPYTER_PATH": str(j / "data"),
        "JUPYTER_RUNTIME_DIR": str(j / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(j / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(j / "lab" / "workspaces"),
        "SHELL": "/bin/bash",  # terminals; the lab's own account has no login shell
    }


def install_kernel(state: State, p: LabPaths) -> Path:
    """The course kernel ``dockerlab``, in this lab's own Jupyter data directory: every lab home
    (the learner's, the tests') has its own, pointed at its own engine."""
    kdir = p.jupyter / "data" / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    spec = kernelspec.spec(kernel_env(state, p))
    text = json.dumps(spec, indent=1, sort_keys=True)
    target = kdir / "kernel.json"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return kdir


COURSE_LOCALE = "zh_CN"  # jupyterlab-language-pack-zh-CN (pyproject's dependencies)


def _course_settings(p: LabPaths) -> None:
    """JupyterLab defaults for the course (user settings, so a learner can still change them):
    no news or update checks (offline), every cell rendered, menus and dialogs in Simplified Chinese
    (the zh-CN language pack; 设置 → 语言 → English switches back, and is kept)."""
    base = p.jupyter / "lab" / "user-settings" / "@jupyterlab"
    for rel, value in (
        ("apputils-extension/notification.jupyterlab-settings", {"fetchNews": "false", "checkForUpdates": False}),
        # Render every cell (no virtual scrolling): stored views are all there, and find-in-page works.
        ("notebook-extension/tracker.jupyterlab-settings", {"windowingMode": "none"}),
        ("translation-extension/plugin.jupyterlab-settings", {"locale": COURSE_LOCALE}),
    ):
        f = base / rel
        if not f.exists():
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value, indent=1))


def copy_course(p: LabPaths) -> Path:
    """The notebooks, copied into the learner's home once: their edits are never overwritten."""
    dest = p.course / "notebooks"
    dest.mkdir(parents=True, exist_ok=True)
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        if not (dest / nb.name).exists():
            shutil.copy2(nb, dest / nb.name)
    return p.course


def copy_labs(p: LabPaths) -> list[Path]:
    """The graded labs' student versions (nbgrader's: solutions and hidden tests removed) next to the
    chapters, so each chapter's closing link to its lab opens for a self-paced learner too. Made once
    (``./lab grade generate`` makes the same) and copied once: the learner's work is never overwritten.
    A classroom's learners get the instructor's release instead (``classroom_server``)."""
    from grader.course import LABS, Course  # the grading package, only when the lab starts

    dest = {lab: p.course / "labs" / lab / f"{lab}.ipynb" for lab in LABS}
    missing = [lab for lab, nb in dest.items() if not nb.exists()]
    if not missing:
        return []
    course = Course.default()
    if not all(course.release(lab).exists() for lab in missing):
        course.generate()
    for lab in missing:
        dest[lab].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(course.release(lab), dest[lab])
    return [dest[lab] for lab in missing]


def learner_config(p: LabPaths) -> Path:
    """A Jupyter config directory that only the learner's server reads (put first on its
    ``JUPYTER_CONFIG_PATH``): nbgrader off. ``./lab author`` shares the lab's config directory (the
    token) but not this one, so the course author keeps nbgrader."""
    d = p.jupyter / "learner-config"
    (d / "labconfig").mkdir(parents=True, exist_ok=True)
    (d / "jupyter_server_config.json").write_text(json.dumps(NBGRADER_OFF, indent=1))
    (d / "labconfig" / "page_config.json").write_text(json.dumps(NBGRADER_LAB_OFF, indent=1))
    return d


def _pidfile(p: LabPaths) -> Path:
    return p.run / "jupyter.pid"


def jupyter_pid(p: LabPaths) -> int | None:
    return proc.running_pid(_pidfile(p), "jupyter-lab")


def _write_token(p: LabPaths) -> str:
    """A new token in JupyterLab's config (0600): never on a command line, never in a log."""
    cfg_dir = p.jupyter / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    f = cfg_dir / "jupyter_server_config.json"
    f.unlink(missing_ok=True)
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w") as out:
        json.dump({"IdentityProvider": {"token": token}}, out)
    return token


def start_jupyter(state: State, p: LabPaths, port: int = 8888, ip: str = "127.0.0.1") -> str:
    """Start JupyterLab (if not running) as this account and return its URL with the token."""
    if jupyter_pid(p) and state.jupyter_url:
        return state.jupyter_url
    if os.geteuid() == 0:
        raise proc.LabFailure("JupyterLab never runs as root: run ./lab up (it switches to the lab's account).")
    port = proc.free_port(port)
    token = _write_token(p)
    root = copy_course(p)
    try:
        copy_labs(p)
    except (OSError, RuntimeError) as e:  # the chapters still open; only the labs' links would not
        print(f"lab: the graded labs were not copied next to the chapters ({e}); "
              "'./lab grade generate' shows why", file=sys.stderr)
    exe = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or "jupyter-lab"
    argv = [exe, "--no-browser", f"--ip={ip}", f"--port={port}", "--port-retries=0",
            f"--ServerApp.root_dir={root}", f"--LabApp.default_url=/lab/tree/{INDEX}",
            "--ServerApp.open_browser=False", f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}"]
    log = p.logs / "jupyter.log"
    _course_settings(p)
    env = {**os.environ, **jupyter_env(p), **kernel_env(state, p)}
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        x for x in (str(learner_config(p)), env.get("JUPYTER_CONFIG_PATH")) if x)
    # Stored widget and SVG outputs render only in trusted (signed) notebooks: the course's own are.
    trust = shutil.which("jupyter-trust", path=str(Path(sys.executable).parent))
    notebooks = sorted(str(x) for x in (root / "notebooks").glob("*.ipynb"))
    if trust and notebooks:
        subprocess.run([trust, *notebooks], env=env, capture_output=True, check=False)
    proc.start(argv, _pidfile(p), log, env=env)
    url = f"http://{ip}:{port}/lab/tree/{INDEX}?token={token}"

    def ready() -> bool:
        req = urllib.request.Request(f"http://{ip}:{port}/api/status", headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(req, timeout=1):
                return True
        except OSError:
            return False

    proc.wait_for(ready, 60, "JupyterLab", log)
    return url


def author_command(state: State, p: LabPaths, port: int = 8890) -> tuple[list[str], str]:
    """JupyterLab for an instructor on the clone (chapters in ``notebooks/``, graded labs in
    ``labs/source/``; jupytext pairs each with its MyST source, see the ``jupytext.toml`` files and
    AUTHORING.md): the command line and the URL, which opens the index chapter."""
    port = proc.free_port(port)
    token = _write_token(p)
    install_kernel(state, p)
    exe = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or "jupyter-lab"
    argv = [exe, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
            f"--ServerApp.root_dir={REPO}", "--ServerApp.open_browser=False",
            f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}"]
    return argv, f"http://127.0.0.1:{port}/lab/tree/{INDEX}?token={token}"


def stop_jupyter(p: LabPaths) -> bool:
    return proc.stop(_pidfile(p), "jupyter-lab")
