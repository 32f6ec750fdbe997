"""What root's ``./lab test`` records about the host before the tests, and the learner's own work
it plants in the learner's lab first: tests/host and tests/afterwards check both afterwards."""

from __future__ import annotations

import json
import pwd
import subprocess
from pathlib import Path

from labcore.state import LabPaths, State

__all__ = ["LEARNER_FILE", "LEARNER_IMAGE", "LEARNER_CONTAINER", "OWN_MOUNTS", "TMP_PREFIXES", "plant_learner_work",
           "snapshot", "tmp_entries"]

# Mounts the project may leave, by design: iproute2 bind-mounts /run/netns on itself the first time a
# network namespace is named on a machine (the classroom's), and keeps it after the last one is deleted.
OWN_MOUNTS = frozenset({"/run/netns"})

LEARNER_CONTAINER = "webserver"
LEARNER_IMAGE = "web:mine"
LEARNER_FILE = "my-notes.txt"


# What the course and its tests name their entries in /tmp by: the labs' runtime directories
# (labcore.state.paths), the suite's scratch directory (labctl's test), throwaway engines (kernel_ext.throwaway),
# the chapters' and labs' own.
TMP_PREFIXES = ("dockerlab-", "dl-", "ch04-sock-", "ch05-", "lab5-")


def tmp_entries() -> list[str]:
    return sorted(e.name for e in Path("/tmp").iterdir() if e.name.startswith(TMP_PREFIXES))


def snapshot() -> str:
    """Bridges, mounts, ip_forward, the course's entries in /tmp, as JSON (passed to tests/afterwards in
    LAB_BEFORE)."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    mounts = Path("/proc/mounts").read_text().splitlines()
    return json.dumps({
        "links": sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()),
        "mounts": sorted(line.split()[1] for line in mounts),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "tmp": tmp_entries(),
    })


def plant_learner_work(user: str, state: State, p: LabPaths) -> None:
    """As the learner: a container named like the book's, an image of theirs, files of theirs."""
    env = ["env", f"DOCKER_HOST={state.docker_host}", f"HOME={pwd.getpwnam(user).pw_dir}"]
    docker = [*env, state.docker_cli]

    def as_learner(*cmd: str) -> None:
        subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, check=False, timeout=120)

    as_learner(*docker, "rm", "-f", LEARNER_CONTAINER)
    as_learner(*docker, "run", "-d", "--name", LEARNER_CONTAINER, "busybox:1.35", "sh", "-c",
               "echo mine > /index.html; sleep 86400")
    as_learner(*docker, "commit", LEARNER_CONTAINER, LEARNER_IMAGE)
    home = pwd.getpwnam(user).pw_dir  # runuser keeps root's HOME
    as_learner("sh", "-c", f"mkdir -p {p.course} && echo mine > {p.course}/{LEARNER_FILE}; "
               f"echo mine > {home}/{LEARNER_FILE}")
