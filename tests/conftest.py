"""Shared fixtures. Engine tests run against the real lab engine that `./lab test` brought up;
if it is not there they fail (a skipped engine test would hide a broken runtime)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import docker
import pytest

from labctl.state import load_state


@pytest.fixture(scope="session")
def state():  # type: ignore[no-untyped-def]
    st = load_state()
    assert st.docker_host, "the lab is not set up: run ./lab up (./lab test does it for you)"
    os.environ.setdefault("DOCKER_HOST", st.docker_host)
    return st


@pytest.fixture(scope="session")
def client(state) -> Iterator[docker.DockerClient]:  # type: ignore[no-untyped-def]
    c = docker.DockerClient(base_url=state.docker_host, timeout=300)
    yield c
    c.close()


@pytest.fixture
def lab(state):  # type: ignore[no-untyped-def]
    from kernel_ext import connect

    lab = connect(session="test-" + secrets.token_hex(3))
    yield lab
    lab.cleanup()
    lab.close()


@pytest.fixture
def unique() -> str:
    return secrets.token_hex(3)
