"""Start a lesson from the same point again without touching what the learner made.

A chapter removes, by the names it uses, only objects the course made: containers, images and
volumes with the session label (made by ``Lab.run``, ``%docker run/create``, ``docker commit`` of
such a container, ``%docker volume create``), and course images (the content label the lab puts on
every image it ships), which the registry serves again. A same-named object made in a terminal
(no label) stays, and so does every other name of an image whose tag is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import docker.errors

from .connection import SESSION_LABEL
from .lab import CleanupReport

__all__ = ["COURSE_IMAGE_LABEL", "reset"]

COURSE_IMAGE_LABEL = "org.dockerlab.content"  # labctl/images.py puts it on every course image


def _labels(attrs: dict[str, Any]) -> dict[str, str]:
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def reset(lab: Any, containers: Iterable[str] = (), images: Iterable[str] = (), volumes: Iterable[str] = (),
          ancestors: Iterable[str] = ()) -> CleanupReport:
    """Remove the named containers, image names and volumes that the course made; leave the rest.

    ``ancestors``: also the session-labelled containers (of any session) made from these images.

    >>> reset(lab, containers=["webserver"], images=["nginx:v2"])  # doctest: +SKIP
    """
    report = CleanupReport()
    api = lab.api
    with lab._errors():
        found: dict[str, dict[str, Any]] = {}
        for name in containers:
            try:
                info = api.inspect_container(name)
            except docker.errors.NotFound:
                continue
            found[info["Id"]] = info  # by id: a named container may also be found by its ancestor
        for ref in ancestors:
            for c in api.containers(all=True, filters={"ancestor": ref, "label": SESSION_LABEL}):
                found.setdefault(c["Id"], api.inspect_container(c["Id"]))
        for info in found.values():
            if SESSION_LABEL in _labels(info):
                api.remove_container(info["Id"], force=True)
                report.containers.append(info["Name"].lstrip("/"))
        for ref in images:
            try:
                labels = _labels(api.inspect_image(ref))
            except docker.errors.NotFound:
                continue
            if SESSION_LABEL in labels or COURSE_IMAGE_LABEL in labels:
                try:
                    api.remove_image(ref, force=True, noprune=False)
                    report.images.append(ref)
                except docker.errors.NotFound:
                    pass
        for name in volumes:
            try:
                v = api.inspect_volume(name)
            except docker.errors.NotFound:
                continue
            if SESSION_LABEL in (v.get("Labels") or {}):
                api.remove_volume(name, force=True)
                report.volumes.append(name)
    return report
