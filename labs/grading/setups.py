"""The given "准备" cell of each lab: a known starting state, whatever ran before.

Each function removes only the lab's own leftovers (its container names and image names), so
a learner can run a lab again from the top, and the same notebook works on the learner's lab
engine and on a grader's throwaway engine.
"""

from __future__ import annotations

from typing import Any

from labs.grading.engine import registry_address
from labs.grading.tasks import NAMESPACE

__all__ = ["prepare_lab1", "prepare_lab2", "prepare_lab3", "prepare_lab4", "prepare_lab5"]


def _remove_containers(client: Any, *names: str) -> None:
    import docker

    for name in names:
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


def _remove_images(client: Any, refs: list[str]) -> None:
    import docker

    for ref in refs:
        try:
            client.images.remove(ref, force=True)
        except docker.errors.ImageNotFound:
            pass


def _commit(client: Any, ref: str, script: str) -> str:
    c = client.containers.run("busybox:1.35", ["sh", "-c", script], detach=True)
    c.wait()
    repo, _, tag = ref.rpartition(":")
    image = c.commit(repo, tag)
    c.remove()
    return str(image.id)


def prepare_lab1(client: Any) -> None:
    _remove_images(client, ["redis:7.0"])  # so that the pull of redis really shares a layer


def prepare_lab2(client: Any) -> dict[str, str]:
    """practice/app:latest, practice/app:tmp, practice/tool:tmp and the decoy decoy/keep:tmp."""
    _remove_containers(client, "lab2-v2")  # the reference answer's container, if a run stopped before its rm
    leftovers = [tag for r in client.api.images() for tag in r.get("RepoTags") or []
                 if tag.startswith(("practice/", "decoy/"))]
    _remove_images(client, leftovers)
    client.images.pull("busybox", "1.35")
    return {
        "practice/app:latest": _commit(client, "practice/app:latest", "echo 1 > /version"),
        "practice/app:tmp": _commit(client, "practice/app:tmp", "echo tmp > /version"),
        "practice/tool:tmp": _commit(client, "practice/tool:tmp", "echo tool > /tool"),
        "decoy/keep:tmp": _commit(client, "decoy/keep:tmp", "echo keep me > /keep"),
    }


def prepare_lab3(client: Any) -> None:
    _remove_containers(client, "lab3-edit", "lab3-web")
    _remove_images(client, ["web:v2"])
    client.images.pull("nginx", "1.22")


def prepare_lab4(client: Any) -> str:
    """Returns the repository learners push to: <registry>/lab4/tools."""
    repo = f"{registry_address()}/{NAMESPACE}/tools"
    # tags and digest references (a pull by digest leaves one on busybox's image) of earlier runs
    _remove_images(client, [ref for r in client.api.images()
                            for ref in (r.get("RepoTags") or []) + (r.get("RepoDigests") or [])
                            if ref.startswith(repo)])
    _remove_images(client, ["hello-world:latest"])
    client.images.pull("busybox", "1.35")
    return repo


def prepare_lab5(client: Any) -> None:
    """Lab 5's containers and its images (``lab5/…``) of an earlier run go; its base images come in."""
    _remove_containers(client, "lab5-web", "lab5-small", "lab5-user")
    _remove_images(client, [tag for r in client.api.images() for tag in r.get("RepoTags") or []
                            if tag.startswith("lab5/")])
    client.images.pull("nginx", "1.22")
    client.images.pull("busybox", "1.35")
