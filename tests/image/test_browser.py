"""The course image in Debian's Chromium, as a learner uses it: open the URL the container printed
(on the published port), chapter 1, run its set-up cells, write the first exercise's command into
its empty cell, run it and the check: the check shows ✘ before and ✔ after. Root (see
test_course_image.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labcore import proc

from e2e.lab_browser import CHROMIUM, CHROMIUM_ARGS, NOTEBOOK, VIEWPORT, CourseServer, LabPage, browser_missing
from .conftest import IMAGE
from .imageutil import CHECK_STARTS, LEARNER_COMMAND, Docker, wait_for_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root")

CHAPTER = "notebooks/01-what-is-docker.ipynb"


@pytest.fixture
def page() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        pytest.fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        p = context.new_page()
        p.set_default_timeout(60_000)
        yield p
        browser.close()


def _run(lab: LabPage, index: int, code: str | None = None, timeout_s: float = 120) -> str:
    """Put ``code`` into cell ``index`` (if given), run it with Shift+Enter, wait for its prompt's number:
    its outputs' text."""
    cell = lab.cell(index)
    cell.scroll_into_view_if_needed()
    editor = cell.locator(".cm-content")
    editor.click()
    if code is not None:
        lab.page.keyboard.press("Control+A")
        lab.page.keyboard.type(code)
    lab.page.keyboard.press("Shift+Enter")
    deadline = time.monotonic() + timeout_s
    while True:
        c = lab.cells()[index]
        if any(ch.isdigit() for ch in c["prompt"]):
            return "\n".join(c["texts"])
        assert time.monotonic() < deadline, f"cell {index + 1} did not finish in {timeout_s:.0f} s"
        time.sleep(0.25)


def test_first_exercise_in_chromium(desktop: Docker, page: Any) -> None:
    port = proc.free_port(18878)
    name = "dlimg-browser"
    desktop("run", "-d", "--privileged", "-v", "dockerlab-browser:/home/learner", "--name", name,
            "-p", f"127.0.0.1:{port}:8888", IMAGE)
    try:
        token, _ = wait_for_url(desktop, name)
        url = f"http://127.0.0.1:{port}/lab/tree/notebooks/00-index.ipynb?token={token}"
        lab = LabPage(page, CourseServer(url=url, root=Path("/nonexistent"), preferred_port=port, startup_s=0))
        lab.open(CHAPTER)
        assert "Docker Lab" in lab.kernel_name()
        # A collapsed input (the course's machinery: jupyter.source_hidden) has no editor on the page; open
        # each as a learner does, with a click on its 「•••」 line, so that editor i is cell i.
        collapsed = page.locator(f"{NOTEBOOK} .jp-InputPlaceholder .jp-Placeholder-content")
        for _ in range(collapsed.count()):
            collapsed.first.click()
        sources = [c.inner_text() for c in page.locator(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor").all()]
        assert len(sources) == page.locator(f"{NOTEBOOK} .jp-Cell").count(), "a cell's input is still collapsed"
        setup = [i for i, s in enumerate(sources)
                 if s.startswith("%load_ext kernel_ext") or "exercises.start(lab" in s]
        check = next(i for i, s in enumerate(sources) if s.startswith(CHECK_STARTS))
        assert len(setup) == 2, setup
        for i in setup:
            _run(lab, i)
        before = _run(lab, check)
        after_command = _run(lab, check - 1, LEARNER_COMMAND)
        after = _run(lab, check)
        assert "✘" in before and "✔" not in before, before
        assert "Error" not in after_command, after_command
        assert "✔" in after, after
    finally:
        desktop("stop", "-t", "30", name, timeout=90, check=False)
        desktop("rm", "-f", name, check=False)
        desktop("volume", "rm", "dockerlab-browser", check=False)
