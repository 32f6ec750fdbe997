"""nbgrader's tools (the Nbgrader menu, Create Assignment, Formgrader) are the instructor's: the
JupyterLab ``./lab up`` starts for a self-paced learner loads neither nbgrader's server extensions nor
its labextension, while ``./lab author`` (the course author's JupyterLab, on the same lab home) keeps
both. The author's server is the control: the same probes find nbgrader there, so they can fail.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_browser import CourseServer, LabPage, ui

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# One URL of each nbgrader server extension (404 when the extension is not loaded).
NBGRADER_URLS = {
    "formgrader": "formgrader/static/package.json",
    "assignment_list": "assignments",
    "validate_assignment": "assignments/validate",  # POST only: 405 when loaded
    "course_list": "formgraders",
}
LABEXTENSION = "@jupyter/nbgrader"
MENU_LABELS_JS = ("() => [...document.querySelectorAll('#jp-menu-panel .lm-MenuBar-itemLabel')]"
                  ".map(e => e.textContent)")


def status(base: str, token: str, path: str) -> int:
    req = urllib.request.Request(f"{base}/{path}", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0  # nothing listens (yet)


def page_config(base: str, token: str) -> dict[str, Any]:
    """The page config JupyterLab's /lab page carries: which labextensions exist and which are off."""
    req = urllib.request.Request(f"{base}/lab", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        html = r.read().decode()
    m = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "the /lab page carries no page config"
    return dict(json.loads(m.group(1)))


def nbgrader_labextension(cfg: dict[str, Any]) -> tuple[bool, bool]:
    """(installed, disabled) for nbgrader's labextension in a page config."""
    installed = any(e.get("name") == LABEXTENSION for e in cfg.get("federated_extensions", []))
    off = cfg.get("disabledExtensions", [])
    disabled = (off.get(LABEXTENSION) is True) if isinstance(off, dict) else LABEXTENSION in off
    return installed, disabled


Author = tuple[subprocess.Popen[bytes], CourseServer, Path]  # the process, its URL, its log


@pytest.fixture(scope="module", autouse=True)
def author_process(course_server: CourseServer) -> Iterator[Author]:
    """``./lab author``'s JupyterLab, started as cmd_author starts it, on the lab home of the running
    learner's server (as when an instructor runs ./lab author after ./lab up: one Jupyter config dir).
    It starts while the learner's tests run; ``author_server`` waits for it."""
    import os

    from labctl import jupyter
    from labcore.state import LabPaths, load_state

    state = load_state()
    home = course_server.root.parent  # the e2e fixture's LabPaths: course = home/course, run beside home
    own = LabPaths(home=home, run=home.parent / "run")
    argv, url = jupyter.author_command(state, own, port=8890)
    log = own.logs / "author.log"
    env = {**os.environ, **jupyter.jupyter_env(own), **jupyter.kernel_env(state, own)}
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield server, CourseServer(url=url, root=own.course, preferred_port=8890, startup_s=0.0), log
    finally:
        server.kill()  # a throwaway server with no kernel or terminal: nothing of it to shut down politely
        server.wait()


@pytest.fixture
def author_server(author_process: Author) -> CourseServer:
    server, course, log = author_process
    deadline = time.monotonic() + 120
    while status(course.base, course.token, "api/status") != 200:
        assert server.poll() is None, f"./lab author's JupyterLab exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"./lab author's JupyterLab is not up: {log.read_text()[-2000:]}"
        time.sleep(0.5)
    return course


def open_lab(page: Any, server: CourseServer) -> list[str]:
    """JupyterLab in an empty workspace (no notebook, no kernel), once it has restored its layout
    (every plugin activated by then): the menu bar's labels."""
    page.goto(server.link("lab", reset=""), timeout=60_000)
    page.locator(".jp-Launcher").first.wait_for(timeout=60_000)
    return [str(x) for x in page.evaluate(MENU_LABELS_JS)]


def test_a_learners_jupyterlab_loads_no_nbgrader(course_server: CourseServer) -> None:
    """The server ./lab up starts (the e2e fixture starts it with labctl.jupyter.start_jupyter)."""
    base, token = course_server.base, course_server.token
    assert status(base, token, "api/status") == 200
    loaded = {ext: code for ext, code in ((e, status(base, token, u)) for e, u in NBGRADER_URLS.items())
              if code != 404}
    assert not loaded, f"a learner's JupyterLab serves nbgrader's server extensions (HTTP codes): {loaded}"
    installed, disabled = nbgrader_labextension(page_config(base, token))
    assert installed, f"{LABEXTENSION} is not installed at all: this test would prove nothing"
    assert disabled, f"a learner's JupyterLab loads {LABEXTENSION} (the Nbgrader menu, Create Assignment)"


def test_a_learners_menu_bar_has_no_nbgrader(lab: LabPage) -> None:
    labels = open_lab(lab.page, lab.server)
    lab.shot("learner-menu-bar")
    assert ui("File", "menu") in labels and ui("Kernel", "menu") in labels, f"the menu bar was not read: {labels}"
    assert "Nbgrader" not in labels, f"a learner's menu bar has nbgrader's menu: {labels}"
    shown = lab.page.inner_text("body")
    assert "Create Assignment" not in shown and "Formgrader" not in shown, "a learner sees nbgrader's panels"


def test_the_course_author_keeps_nbgrader(author_server: CourseServer) -> None:
    """The control: ./lab author's JupyterLab, on a lab home like the learner's, has all of nbgrader
    (its menu bar, seen in Chromium when this test was written: File Edit View Run Kernel Nbgrader …;
    not re-checked in the browser each run, which would cost a page load)."""
    base, token = author_server.base, author_server.token
    missing = {e: code for e, u in NBGRADER_URLS.items() if (code := status(base, token, u)) == 404}
    assert not missing, f"./lab author's JupyterLab lacks nbgrader's server extensions: {missing}"
    installed, disabled = nbgrader_labextension(page_config(base, token))
    assert installed and not disabled, f"./lab author's JupyterLab does not load {LABEXTENSION}"
