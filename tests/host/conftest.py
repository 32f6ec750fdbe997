"""Checks that need root (run by root's ``./lab test`` after the account's suite): grading sandboxes,
and what a second, ordinary account can reach of the lab. ``LAB_HOME`` is the tests' lab,
``LAB_MAIN_HOME`` the learner's own, ``LAB_ACCOUNT`` the account both run as."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator

import pytest

PROBE = "dlabprobe"  # an ordinary local account with no business in the lab


@pytest.fixture(scope="session", autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/host run as root (root's ./lab test runs them)")


@pytest.fixture(scope="session")
def account() -> str:
    return os.environ.get("LAB_ACCOUNT", "dockerlab")


@pytest.fixture(scope="session")
def probe() -> Iterator[str]:
    try:
        pwd.getpwnam(PROBE)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE], check=True)
    yield PROBE
