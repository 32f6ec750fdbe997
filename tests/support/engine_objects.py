"""What a test made on the lab's engine, and taking it away again: the tests that build or pull record
the engine's objects first and remove only what appeared since, so the notebooks after them (nbval
compares their stored outputs) start from the engine as it was (docker-py's habit)."""

from __future__ import annotations

import docker

__all__ = ["Objects", "engine_objects", "restore"]

Objects = tuple[set[str], set[str], set[str], set[str]]


def engine_objects(c: docker.DockerClient) -> Objects:
    """Container ids, image names, volume names and image ids on the engine."""
    images = c.api.images(all=True)
    return ({x["Id"] for x in c.api.containers(all=True)}, {t for img in images for t in img.get("RepoTags") or []},
            {v["Name"] for v in c.api.volumes().get("Volumes") or []}, {img["Id"] for img in images})


def restore(c: docker.DockerClient, before: Objects) -> None:
    """Remove what the test made (containers, image names, volumes), so the notebooks after it start
    from the engine as it was."""
    containers, tags, volumes, _ = engine_objects(c)
    for cid in containers - before[0]:
        c.api.remove_container(cid, force=True, v=True)
    for tag in tags - before[1]:
        try:
            c.api.remove_image(tag, force=True)
        except docker.errors.NotFound:
            pass
    for name in volumes - before[2]:
        c.api.remove_volume(name, force=True)
    for image_id in engine_objects(c)[3] - before[3]:  # left without a name by the removals above
        try:
            c.api.remove_image(image_id, force=True)
        except docker.errors.APIError:
            pass
    c.api.prune_builds(all=True)  # BuildKit's cache keeps its bases' layers: a chapter's first pull would find them
