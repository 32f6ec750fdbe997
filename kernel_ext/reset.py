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
from .errors import LabError
from .messages import t
from .names import aliases, candidates

__all__ = ["COURSE_IMAGE_LABEL", "reset"]

COURSE_IMAGE_LABEL = "org.dockerlab.content"  # labctl/images.py puts it on every course image
_KIND = {"container": "reset.kind.container", "image": "reset.kind.image", "volume": "reset.kind.volume"}


def _labels(attrs: dict[str, Any]) -> dict[str, str]:
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def _state(api: Any, kind: str, name: str) -> str:
    """``absent``, ``course`` (the course made it: removable) or ``learner``."""
    try:
        if kind == "container":
            labels = _labels(api.inspect_container(name))
        elif kind == "image":
            labels = _labels(api.inspect_image(name))
        else:
            labels = dict(api.inspect_volume(name).get("Labels") or {})
    except docker.errors.NotFound:
        return "absent"
    if SESSION_LABEL in labels or (kind == "image" and COURSE_IMAGE_LABEL in labels):
        return "course"
    return "learner"


def _remove(api: Any, kind: str, name: str, report: CleanupReport) -> None:
    try:
        if kind == "container":
            api.remove_container(name, force=True)
            report.containers.append(name)
        elif kind == "image":
            api.remove_image(name, force=True, noprune=False)
            report.images.append(name)
        else:
            api.remove_volume(name, force=True)
            report.volumes.append(name)
    except docker.errors.NotFound:
        pass


def _own_name(api: Any, kind: str, name: str, report: CleanupReport) -> str | None:
    """A name of the course's own for ``name``: free, or held by what the course made (removed)."""
    for candidate in candidates(name, kind):
        st = _state(api, kind, candidate)
        if st == "course":
            _remove(api, kind, candidate, report)
        if st != "learner":
            return candidate
    return None


def _course_copy(lab: Any, name: str, mine: str) -> None:
    """The lab registry's ``name`` under ``mine``, so the chapter's ``run nginx:1.22`` still runs; an image
    the chapter makes itself (``nginx:v2``, by commit) is not in the registry: nothing to do."""
    try:
        lab.pull_as(name, mine, progress=False)
    except (LabError, docker.errors.APIError):
        pass


def reset(lab: Any, containers: Iterable[str] = (), images: Iterable[str] = (), volumes: Iterable[str] = (),
          ancestors: Iterable[str] = ()) -> CleanupReport:
    """Remove the named containers, image names and volumes that the course made; leave the rest.

    ``ancestors``: also the session-labelled containers (of any session) made from these images.
    A name the learner's own object holds stays theirs: one sentence says so, and the course uses a
    name of its own instead (:mod:`kernel_ext.names`).

    >>> reset(lab, containers=["webserver"], images=["nginx:v2"])  # doctest: +SKIP
    """
    report = CleanupReport()
    api = lab.api
    with lab._errors():
        for ref in ancestors:
            for c in api.containers(all=True, filters={"ancestor": ref, "label": SESSION_LABEL}):
                info = api.inspect_container(c["Id"])
                api.remove_container(c["Id"], force=True)
                report.containers.append(info["Name"].lstrip("/"))
        for kind, names in (("container", containers), ("image", images), ("volume", volumes)):
            for name in names:
                st = _state(api, kind, name)
                if st == "course":
                    _remove(api, kind, name, report)
                if st != "learner":
                    aliases.use(name, name)
                    first = candidates(name, kind, 1)[0]  # what an earlier run made under its own name
                    if _state(api, kind, first) == "course":
                        _remove(api, kind, first, report)
                    continue
                mine = _own_name(api, kind, name, report)
                if mine is None:  # twenty names taken: keep the book's, say so
                    print(t("reset.taken.none", kind=t(_KIND[kind]), name=name))
                    continue
                aliases.use(name, mine)
                print(t("reset.taken", kind=t(_KIND[kind]), name=name, mine=mine))
                if kind == "image":  # a course image (nginx:1.22): its copy under the course's own name
                    _course_copy(lab, name, mine)
    return report
