"""``connect()``: the lab's engine as a :class:`Lab`, and the error translation every call uses."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from labcore.state import load_state

from . import errors

__all__ = ["SESSION_LABEL", "LabConfig", "engine_errors", "lab_config", "new_session_id"]

SESSION_LABEL = "org.dockerlab.session"



@dataclass(frozen=True)
class LabConfig:
    docker_host: str
    upstream: str = ""
    mirror: str = ""
    registry: str = ""  # the learner's own registry (where pushes go)
    publisher: str = ""  # the course's writable view of the upstream (unix socket)
    docker_cli: str = "docker"
    engine: str = "lab"


def lab_config(engine: str | None = None) -> LabConfig:
    """Where the engine is: ``engine`` if given, else ``DOCKER_HOST``, else the lab's state file
    (under ``$LAB_HOME``, default ``<repo>/.lab``: :mod:`labcore.state`, the one schema of it)."""
    state = load_state()
    host = engine or os.environ.get("DOCKER_HOST") or state.docker_host or "unix:///var/run/docker.sock"
    cli = state.docker_cli or "docker"
    return LabConfig(docker_host=host, upstream=state.upstream, mirror=state.mirror, registry=state.registry,
                     publisher=state.publisher, docker_cli=cli if Path(cli).exists() else "docker",
                     engine=state.engine or "lab")


def new_session_id() -> str:
    return os.environ.get("DOCKERLAB_SESSION") or secrets.token_hex(4)


def _is_port_error(text: str) -> str | None:
    import re

    m = re.search(r"(?:0\.0\.0\.0|127\.0\.0\.1|\[::\]):(\d+).*"
                  r"(?:address already in use|port is already allocated)", text)
    if m:
        return m.group(1)
    m = re.search(r"Bind for [^:]*:(\d+) failed: port is already allocated", text)
    return m.group(1) if m else None


@contextlib.contextmanager
def engine_errors(host: str, ref: str = "", name: str = "") -> Iterator[None]:
    """Turn docker-py and connection failures into one LabError with a learner-facing sentence."""
    try:
        yield
    except errors.LabError:
        raise
    except docker.errors.ContainerError as e:
        err = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise errors.LabError("container.failed", code=e.exit_status,
                              detail=(err[-1] if err else "")[:200]) from e
    except docker.errors.ImageNotFound as e:
        raise errors.ImageNotFound("image.notfound", ref=ref or str(e.explanation)) from e
    except docker.errors.NotFound as e:
        text = str(e.explanation or e)
        if "manifest" in text or "pull access denied" in text or "repository does not exist" in text:
            raise errors.ImageNotFound("image.notfound.remote", ref=ref) from e
        if "container" in text.lower() and name:
            raise errors.ContainerNotFound("container.notfound", name=name) from e
        if ref:
            raise errors.ImageNotFound("image.notfound", ref=ref) from e
        raise errors.ContainerNotFound("container.notfound", name=name or text) from e
    except docker.errors.APIError as e:
        text = str(e.explanation or e)
        port = _is_port_error(text)
        if port:
            raise errors.PortInUse("port.taken", port=port, alt=int(port) + 1) from e
        if e.status_code == 409 and "already in use" in text:
            raise errors.Conflict("name.conflict", name=name or "?") from e
        if e.status_code == 409 and ("is using its referenced image" in text or "being used by" in text):
            import re

            m = re.search(r"container ([0-9a-f]{12})", text)
            raise errors.Conflict("image.in_use", ref=ref, container=m.group(1) if m else "?") from e
        if "invalid reference format" in text or "invalid repository name" in text:
            raise errors.BadReference("ref.bad", ref=ref) from e
        if "connection refused" in text or "no such host" in text or "Client.Timeout" in text:
            raise errors.RegistryUnavailable("registry.down", detail=text.splitlines()[0][:160]) from e
        raise errors.LabError("engine.error", detail=text.splitlines()[0][:300]) from e
    except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionRefusedError) as e:
        raise errors.EngineUnavailable("engine.down", host=host) from e
    except docker.errors.DockerException as e:
        if "Error while fetching server API version" in str(e):
            raise errors.EngineUnavailable("engine.down", host=host) from e
        raise errors.LabError("engine.error", detail=str(e).splitlines()[0][:300]) from e
