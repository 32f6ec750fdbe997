"""The course image's tests: a throwaway rootful engine that plays Docker Desktop's role, with the
image that ``./lab image build`` made loaded into it (once for all tests here)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rootful_engine import Engine, pick_subnet
from labcore.state import REPO

from .imageutil import Docker

ARCHIVE = Path(os.environ.get("LAB_MAIN_HOME") or REPO / ".lab") / "image" / "course-image.tar"
IMAGE = "dockerlab/course:latest"


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


