"""End-to-end fixtures: the lab's own JupyterLab launcher serving a temporary copy of the course,
and Debian's Chromium driven by Playwright for Python (never a downloaded browser).

The server is started with ``labctl.jupyter.start_jupyter`` itself (so its flags, readiness wait and
printed URL are what ``./lab up`` uses), on a preferred port this fixture holds busy, with a
first-time learner's Jupyter config and data dirs (no settings, no workspace, no trust database).
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import lab_browser
import pytest
from lab_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    VIEWPORT,
    CourseServer,
    LabPage,
    browser_missing,
    not_run,
    skip_or_fail,
)

from labcore.state import REPO


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives JupyterLab in a real Chromium (Playwright)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not_run:
        terminalreporter.write_sep("!", "END-TO-END BROWSER TESTS WERE NOT RUN", red=True, bold=True)
        terminalreporter.write_line(not_run[0], red=True, bold=True)


@pytest.fixture(scope="session")
def course_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourseServer]:
    from labctl import jupyter
    from labcore import proc
    from labcore.state import LabPaths, load_state, save_state

    state = load_state()
    assert state.docker_host, "the lab is not set up: run ./lab up (./lab test does it for you)"
    tmp = tmp_path_factory.mktemp("e2e")
    root = tmp / "course"
    shutil.copytree(REPO / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    own = LabPaths(home=tmp / "home", run=tmp / "run")
    for d in (own.home, own.run, own.logs):
        d.mkdir(parents=True, exist_ok=True)
    save_state(state, own)  # the kernel finds the lab's engine and registries through its LAB_HOME
    # The course kernel, in this server's own Jupyter data directory, pointing at the lab's engine.
    jupyter.install_kernel(state, own)
    preferred = proc.free_port(8888)
    with socket.socket() as blocker, pytest.MonkeyPatch.context() as mp:
        # Fault: the preferred port is taken, so the launcher must pick the next free one.
        blocker.bind(("127.0.0.1", preferred))
        blocker.listen()
        # start_jupyter copies labctl's REPO/notebooks into the server's course directory: the copy here.
        mp.setattr(jupyter, "REPO", root)
        t0 = time.monotonic()
        url = jupyter.start_jupyter(state, own, port=preferred)
        startup = time.monotonic() - t0
    server = CourseServer(url=url, root=own.course, preferred_port=preferred, startup_s=startup)
    print(f"\n[e2e] JupyterLab (port {preferred} held busy) started in {startup:.1f} s: {url}", file=sys.stderr)
    try:
        yield server
    finally:
        jupyter.stop_jupyter(own)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(lab_browser.CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def lab(browser: Any, course_server: CourseServer) -> Iterator[LabPage]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(60_000)
    lp = LabPage(page, course_server)
    page.on("pageerror", lambda e: lp.js_errors.append(str(e)))
    page.on("console", lambda m: lp.js_errors.append(m.text) if m.type == "error" else None)
    try:
        yield lp
    finally:
        context.close()


