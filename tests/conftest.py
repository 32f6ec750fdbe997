"""Shared fixtures. Engine tests run against the real lab engine that `./lab test` brought up;
if it is not there they fail (a skipped engine test would hide a broken runtime)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import docker
import pytest

from labcore.state import load_state

# A message key missing from the catalogue raises in tests (and in the kernels nbval starts from
# here), instead of showing the learner the bare key.
os.environ.setdefault("DOCKERLAB_STRICT_MESSAGES", "1")


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


@pytest.fixture(scope="session")
def fresh_engine(state):  # type: ignore[no-untyped-def]
    """A throwaway engine that has never pulled anything, using the lab's mirror (destroyed after)."""
    from labengine import enginepkgs
    from labengine.rootless import RootlessEngine
    from labcore.state import paths

    p = paths()
    tag = secrets.token_hex(3)
    regs = (state.mirror, state.upstream, state.registry)
    eng = RootlessEngine(name=f"t{tag}", data_root=p.home / "test-engines" / tag, run=p.run, logs=p.logs,
                         binaries=enginepkgs.ensure(print), mirror=state.mirror, insecure=regs)
    eng.start()
    eng.forward([int(r.rpartition(":")[2]) for r in regs])
    c = docker.DockerClient(base_url=eng.host, timeout=300)
    c.dockerlab_engine = eng  # type: ignore[attr-defined]
    yield c
    c.close()
    eng.destroy()
    assert not eng.socket.exists()
