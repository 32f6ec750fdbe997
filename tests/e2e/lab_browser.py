"""Driving JupyterLab in Debian's Chromium for the end-to-end tests: where the browser is, the
course server the fixtures start, and a small page object (open, Run All, save, inspect, screenshot)."""

from __future__ import annotations

import functools
import json
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labcore.state import REPO

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "NOTEBOOK",
    "VIEWPORT",
    "CourseServer",
    "KernelDied",
    "LabPage",
    "RunAll",
    "RunAllStopped",
    "browser_missing",
    "not_run",
    "notebook_sources",
    "skip_or_fail",
]

# Screenshots and traces: somewhere the lab's account can write (the repository may be root's).
ARTIFACTS = Path(os.environ.get("LAB_ARTIFACTS")
                 or Path(os.environ.get("LAB_HOME") or REPO / ".lab") / "artifacts" / "e2e")
CHROMIUM = Path(os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the active main-area tab

not_run: list[str] = []  # why the browser tests were skipped, for the terminal summary


@functools.cache
def _course_translations() -> dict[str, list[str]]:
    """JupyterLab's own strings in the course's default locale (the zh-CN pack), as its pages show them."""
    from jupyterlab_server.translation_utils import get_language_pack

    from labctl.jupyter import COURSE_LOCALE

    return dict(get_language_pack(COURSE_LOCALE)[0].get("jupyterlab", {})) if COURSE_LOCALE != "en" else {}


def ui(text: str, context: str = "") -> str:
    """``text`` of JupyterLab's interface as the learner sees it (Chinese by default): ``ui("File", "menu")``."""
    found = _course_translations().get(f"{context}\x04{text}" if context else text)
    return found[0] if found else text


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: run `.venv/bin/pip install -e '.[dev]'` (./lab test does it)."
    if not os.access(CHROMIUM, os.X_OK):
        return (f"{CHROMIUM} is missing: run `apt-get install chromium` (./lab up installs it), "
                f"or point LAB_CHROMIUM at a Chromium binary.")
    return None


def skip_or_fail(reason: str) -> None:
    """Skip loudly on a learner's machine; in CI (env CI set) a skipped e2e test is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} CI is set, and a skipped end-to-end test in CI is a failure.", pytrace=False)
    not_run.append(f"end-to-end browser tests skipped: {reason}")
    pytest.skip(f"END-TO-END BROWSER TESTS NOT RUN: {reason}")


@dataclass
class CourseServer:
    url: str  # exactly what `./lab up` prints
    root: Path  # the temporary copy of the course the server serves
    preferred_port: int  # the port the launcher was asked for (held busy by the fixture)
    startup_s: float

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.url).port or 0)

    @property
    def token(self) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)["token"][0]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def link(self, path: str = "", **query: str) -> str:
        q = urllib.parse.urlencode({**query, "token": self.token})
        return f"{self.base}/{path.lstrip('/')}?{q}"


# --- driving JupyterLab -----------------------------------------------------------------------

_CELLS_JS = """(sel) => [...document.querySelectorAll(sel + ' .jp-Cell')].map((c) => {
  const outs = [...c.querySelectorAll('.jp-OutputArea-output')];
  const txt = (o) => o.textContent || '';
  return {
    code: c.classList.contains('jp-CodeCell'),
    prompt: (c.querySelector('.jp-InputArea-prompt')?.textContent || '').trim(),
    mimes: outs.map(o => o.getAttribute('data-mime-type')),
    stderr: outs.filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr').map(txt),
    plain: outs.filter(o => o.getAttribute('data-mime-type') === 'text/plain').map(txt),
    texts: outs.map(txt),
    widgets: c.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length,
    disconnected: c.querySelectorAll('.jupyter-widgets-disconnected').length,
    pullViews: c.querySelectorAll('.dockerlab-pull').length,
    widgetErrors: [...c.querySelectorAll('.jp-OutputArea-output')].map(txt)
        .filter(t => /Error displaying widget|Loading widget|model not found/i.test(t)),
    bars: [...c.querySelectorAll('.jupyter-widgets .progress-bar')]
        .map(b => ({width: b.style.width, cls: b.className})),
    svgs: [...c.querySelectorAll('.jp-RenderedSVG img')].map(im => ({src: im.src,
        w: im.naturalWidth, h: im.naturalHeight,
        shown: Math.round(im.getBoundingClientRect().width),
        room: Math.round(im.closest('.jp-OutputArea-child').getBoundingClientRect().width)})),
    untrustedSvg: [...c.querySelectorAll('.jp-RenderedSVG')].some(o => /untrusted/i.test(o.textContent)),
    diffs: [...c.querySelectorAll('.dockerlab-diff')].map(d => ({
        details: d.querySelectorAll('details').length, open: d.querySelectorAll('details[open]').length,
        text: d.textContent, height: d.getBoundingClientRect().height})),
    pngs: [...c.querySelectorAll('.jp-RenderedImage img')].map(im => ({w: im.naturalWidth, h: im.naturalHeight})),
  };
})"""

_STATUS_JS = """(sel) => ({
  status: document.querySelector(sel + ' .jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') || '',
  kernel: ([...document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem')]
      .map(e => e.textContent.trim()).find(t => t.includes(' | ')) || ''),
  dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.replace(/\\s+/g, ' ').trim()),
  prompts: [...document.querySelectorAll(sel + ' .jp-Cell')].map(c =>
      !c.classList.contains('jp-CodeCell') || !c.querySelector('.jp-InputArea-prompt') ? null
      : c.querySelector('.jp-InputArea-prompt').textContent.trim()),
})"""
# A code cell whose input is collapsed (jupyter.source_hidden: the course's machinery) has no prompt
# on the page, so, like a Markdown cell, it is None in ``prompts``; whether it ran is in the saved
# notebook's execution_count (tests/e2e/test_browser.py reads it after Run All).

_PARTIAL_BARS_JS = """(sel) => [...document.querySelectorAll(sel + ' .jupyter-widgets .progress-bar')]
  .filter(b => b.style.width && b.style.width !== '100%').length"""

# Two different CJK characters drawn identically means both are the missing-glyph box (no CJK font).
_CJK_JS = """(sample) => {
  const cv = document.createElement('canvas'); cv.width = 64; cv.height = 64;
  const g = cv.getContext('2d');
  const font = getComputedStyle(document.querySelector('.jp-RenderedHTMLCommon') || document.body).fontFamily;
  const draw = (ch) => { g.clearRect(0, 0, 64, 64); g.font = '48px ' + font; g.fillText(ch, 4, 52);
                         return Array.from(g.getImageData(0, 0, 64, 64).data).join(''); };
  return draw(sample[0]) !== draw(sample[1]);
}"""

DEAD_STATES = {"dead", "restarting", "autorestarting", "connecting", "unknown", "terminating"}


class KernelDied(AssertionError):
    pass


class RunAllStopped(AssertionError):
    pass


@dataclass
class RunAll:
    seconds: float
    partial_bars_seen: int = 0  # progress bars seen below 100% while the run was going (live updates)
    polls: int = 0


@dataclass
class LabPage:
    page: Any
    server: CourseServer
    js_errors: list[str] = field(default_factory=list)
    news_prompt_seen: bool = False

    # navigation
    def open(self, path: str) -> None:
        """Open ``path`` (relative to the server root) alone in the workspace, kernel ready."""
        self.page.goto(self.server.link(f"lab/tree/{path}", reset=""))
        self.wait_notebook(Path(path).name)

    def wait_notebook(self, name: str, timeout_s: float = 60) -> None:
        """Wait until ``name`` is the current tab and its kernel has started and is idle. A dialog
        on the way (kernel chooser, trust prompt, error) fails at once, with its text."""
        page = self.page
        page.locator(".jp-mod-current .lm-TabBar-tabLabel", has_text=name).first.wait_for(timeout=timeout_s * 1000)
        page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(timeout=timeout_s * 1000)
        deadline = time.monotonic() + timeout_s
        while True:
            s = page.evaluate(_STATUS_JS, NOTEBOOK)
            if s["dialogs"]:
                raise AssertionError(f"opening {name} shows a dialog: {s['dialogs'][0]}")
            if s["kernel"].endswith(f"| {ui('Idle')}") and s["status"] == "idle":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the kernel of {name} is not idle after {timeout_s:.0f} s: {s['kernel']!r}")
            time.sleep(0.2)

    def current_tab(self) -> str:
        return str(self.page.locator(".lm-DockPanel-tabBar .lm-mod-current .lm-TabBar-tabLabel").first.inner_text())

    def kernel_name(self, timeout_s: float = 60) -> str:
        """The kernel the notebook's toolbar names, once JupyterLab has picked one ("No Kernel" while
        it is still starting; returned as is if it never does, so a test can fail on it)."""
        loc = self.page.locator(f"{NOTEBOOK} .jp-KernelName")
        deadline = time.monotonic() + timeout_s
        name = str(loc.inner_text()).strip()
        while name in (ui("No Kernel"), "No Kernel", "Kernel", "") and time.monotonic() < deadline:
            time.sleep(0.25)
            name = str(loc.inner_text()).strip()
        return name

    def dialogs(self) -> list[str]:
        return list(self.page.evaluate(_STATUS_JS, NOTEBOOK)["dialogs"])

    def notebook_path(self, rel: str) -> Path:
        return self.server.root / rel

    # inspection
    def cells(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate(_CELLS_JS, NOTEBOOK))

    def cell(self, index: int) -> Any:
        return self.page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)

    def cjk_renders(self, sample: str = "镜像") -> bool:
        return bool(self.page.evaluate(_CJK_JS, sample))

    # running
    def run_all(self, sources: list[str], timeout_s: float = 240) -> RunAll:
        """Run → Run All Cells from the menu, then wait (polling the page, no sleep standing in for
        the condition) until no cell is queued and the kernel is idle. Raises KernelDied or
        RunAllStopped naming the cell (1-based, as JupyterLab's status bar counts)."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text=ui("Run", "menu")).first.click()
        page.locator(".lm-Menu-item:visible", has_text=ui("Run All Cells")).first.click()
        t0 = time.monotonic()
        seen_queue = False
        partial = 0
        polls = 0
        while True:
            polls += 1
            s = page.evaluate(_STATUS_JS, NOTEBOOK)
            prompts: list[str | None] = s["prompts"]
            queued = [i for i, p in enumerate(prompts) if p is not None and "*" in p]
            seen_queue = seen_queue or bool(queued)
            died = [d for d in s["dialogs"] if "died" in d or "Restarting" in d or "Dead" in d]
            if seen_queue and (died or s["status"] in DEAD_STATES):
                # The reply of the cell before may still be on its way: let the prompts settle.
                settle = time.monotonic() + 5
                while any(p and "*" in p for p in prompts) and time.monotonic() < settle:
                    time.sleep(0.2)
                    prompts = page.evaluate(_STATUS_JS, NOTEBOOK)["prompts"]
                i = self._first_unexecuted(prompts)
                self.shot(f"failed-run-all-{self._tab_stem()}")
                raise KernelDied(f"the kernel died while running cell {i + 1} ({_first_line(sources, i)}); "
                                 f"JupyterLab says: {died[0] if died else s['status']}")
            partial += int(page.evaluate(_PARTIAL_BARS_JS, NOTEBOOK))
            if (seen_queue or time.monotonic() - t0 > 5) and not queued and s["status"] == "idle":
                break
            if time.monotonic() - t0 > timeout_s:
                where = f"cell {queued[0] + 1} ({_first_line(sources, queued[0])})" if queued else "no cell"
                raise AssertionError(f"Run All did not finish within {timeout_s:.0f} s; still running: {where}")
            time.sleep(0.25)
        seconds = time.monotonic() - t0
        missing = [i for i, p in enumerate(prompts) if p is not None and not any(ch.isdigit() for ch in p)]
        if missing:
            stop = max((i for i, p in enumerate(prompts[: missing[0]]) if p), default=missing[0])
            cells = self.cells()
            said = " | ".join(x.strip().splitlines()[-1] for x in cells[stop]["stderr"] if x.strip()) or "no error text"
            self.shot(f"failed-run-all-{self._tab_stem()}")
            raise RunAllStopped(f"Run All stopped at cell {stop + 1} ({_first_line(sources, stop)}): {said}; "
                                f"{len(missing)} code cells did not run, the first is cell {missing[0] + 1}")
        return RunAll(seconds=seconds, partial_bars_seen=partial, polls=polls)

    def _tab_stem(self) -> str:
        return Path(urllib.parse.urlsplit(self.page.url).path).stem

    @staticmethod
    def _first_unexecuted(prompts: list[str | None]) -> int:
        for i, p in enumerate(prompts):
            if p is not None and not any(ch.isdigit() for ch in p):
                return i
        return len(prompts) - 1

    def save(self, rel: str, timeout_s: float = 30) -> dict[str, Any]:
        """Save from the toolbar; return the notebook as JupyterLab wrote it."""
        path = self.notebook_path(rel)
        before = path.stat().st_mtime_ns
        self.page.locator(f"{NOTEBOOK} [data-jp-item-name='save'] jp-button").click()
        deadline = time.monotonic() + timeout_s
        while path.stat().st_mtime_ns == before:
            assert time.monotonic() < deadline, f"JupyterLab did not save {rel} within {timeout_s:.0f} s"
            time.sleep(0.1)
        # the contents API writes in one go; read until it parses (a half-written file does not)
        while True:
            try:
                return dict(json.loads(path.read_text()))
            except ValueError:
                assert time.monotonic() < deadline, f"{rel} is not valid JSON after saving"
                time.sleep(0.1)

    # artefacts
    def dismiss_news_prompt(self) -> None:
        """JupyterLab's 'get notified about official Jupyter news?' toast covers the views; answer No
        as a learner would (the lab should switch it off: see issue 7's closing note)."""
        toast = self.page.locator(".Toastify__toast",
                                  has_text=ui("Would you like to get notified about official Jupyter news?"))
        if toast.count():
            self.news_prompt_seen = True
            toast.get_by_role("button", name=ui("No")).first.click()
            toast.first.wait_for(state="detached", timeout=5000)

    def shot(self, name: str, cell: int | None = None) -> Path:
        """Screenshot of the whole app (with ``cell`` scrolled into view), and of that cell alone."""
        self.dismiss_news_prompt()
        if cell is not None:
            loc = self.cell(cell)
            loc.scroll_into_view_if_needed()
            loc.screenshot(path=str(ARTIFACTS / f"{name}-cell.png"))
        target = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        return target


def _first_line(sources: list[str], i: int) -> str:
    if 0 <= i < len(sources):
        line = next((x for x in sources[i].splitlines() if x.strip()), "")
        return f"`{line[:80]}`"
    return "?"


def notebook_sources(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]]
