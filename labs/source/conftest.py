"""When nbval has run a lab's solution notebook (inside ./lab test), remove what that lab made on
the lab engine (containers such as lab3-web still publishing a port, images such as web:v2), so a
test run leaves the learner's engine as it found it. Only the lab's own names are touched."""

from __future__ import annotations

from typing import Any

_LEFTOVERS = {
    "lab2": {"containers": ("lab2-v2",), "prefixes": ("practice/", "decoy/")},
    "lab3": {"containers": ("lab3-edit", "lab3-web"), "prefixes": ("web:",)},
    "lab4": {"containers": (), "prefixes": ()},
    "lab5": {"containers": ("lab5-web", "lab5-small", "lab5-user"), "prefixes": ("lab5/",)},
}


def _cleanup(lab: str) -> None:
    import docker

    from labcore.state import load_state

    spec = _LEFTOVERS.get(lab)
    state = load_state()
    if spec is None or not state.docker_host:
        return
    client = docker.DockerClient(base_url=state.docker_host, timeout=60)
    try:
        for name in spec["containers"]:
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        prefixes = tuple(spec["prefixes"]) + ((f"{state.registry or state.upstream}/lab4/",) if lab == "lab4" else ())
        for img in client.api.images():
            for ref in (img.get("RepoTags") or []) + (img.get("RepoDigests") or []):
                if prefixes and ref.startswith(prefixes):
                    try:
                        client.images.remove(ref, force=True)
                    except docker.errors.NotFound:
                        pass
    finally:
        client.close()


def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    if item.path.suffix != ".ipynb":
        return
    if nextitem is None or nextitem.path != item.path:
        _cleanup(item.path.stem)
