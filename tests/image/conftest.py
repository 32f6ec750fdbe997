"""The course image's tests: a throwaway rootful engine that plays Docker Desktop's role, with the
image that ``./lab image build`` made loaded into it (once for all tests here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rootful_engine import Engine, pick_subnet
from labcore.state import REPO

from .imageutil import Docker

# ./lab test: the throwaway builder's (tests.support.imagebuild); by hand: what `sudo ./lab image build` made
ARCHIVE = Path(os.environ.get("LAB_IMAGE_DIR") or Path(os.environ.get("LAB_MAIN_HOME") or REPO / ".lab") / "image") \
    / "course-image.tar"
IMAGE = "dockerlab/course:latest"
ARM64 = ARCHIVE.with_name("course-image-arm64.tar")
# ./lab test (tests.support.suite) builds both archives before it runs tests/image and says so here: a
# missing one is then a failure, not a skip.
IN_SUITE = os.environ.get("LAB_IMAGE_SUITE") == "1"
DEVCONTAINER_CLI = "@devcontainers/cli@0.89.0"  # the version tests/image was written against


def need_arm64() -> None:
    """The arm64 archive and qemu-user-static's binfmt_misc entry, or skip (fail in ./lab test)."""
    reason = ""
    if not ARM64.exists():
        reason = f"no {ARM64}: run 'sudo ./lab image build --arch arm64' first"
    elif not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        reason = "no qemu-aarch64 binfmt_misc entry (courseimage/README.md)"
    if reason:
        if IN_SUITE:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def devcontainer_cli() -> Iterator[str]:
    """The Dev Containers CLI: LAB_DEVCONTAINER_CLI, else one on PATH, else npm installs it for this run
    into a directory removed afterwards."""
    given = os.environ.get("LAB_DEVCONTAINER_CLI") or shutil.which("devcontainer")
    if given:
        yield given
        return
    if not shutil.which("npm"):
        pytest.fail("npm is missing (the Dev Containers CLI comes from npm): apt-get install npm, then run again")
    top = tempfile.mkdtemp(prefix="dlimg-devc-", dir="/var/tmp")
    try:
        # no install scripts, a cache of its own (nothing left in root's ~/.npm)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--no-update-notifier",
                            "--prefix", top, DEVCONTAINER_CLI], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "npm_config_cache": f"{top}/.npm-cache"})
        assert r.returncode == 0, f"npm could not install {DEVCONTAINER_CLI}: {(r.stderr or r.stdout)[-1500:]}"
        yield str(Path(top) / "node_modules" / ".bin" / "devcontainer")
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def desktop() -> Iterator[Docker]:
    """A rootful dockerd of the test's own, as Docker Desktop runs one, and the course image loaded."""
    if not ARCHIVE.exists():
        pytest.fail(f"{ARCHIVE} is missing: run 'sudo ./lab image build' first (see tests/image/test_course_image.py).")
    top = Path(tempfile.mkdtemp(prefix="dlimg-", dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix="dlimg-", dir="/tmp"))  # short: the socket's path
    seed = os.getpid() % 200
    engine = Engine(name="desktop", data_root=top / "data", run=run, logs=top, bridge=f"dlimg{seed}",
                    subnet=pick_subnet(seed + 40))
    try:
        engine.start()
        docker = Docker(engine.host)
        docker("load", "-i", str(ARCHIVE), timeout=900)
        yield docker
    finally:
        engine.destroy()
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


