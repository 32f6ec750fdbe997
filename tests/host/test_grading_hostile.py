"""Hostile submissions graded in one batch with honest ones, two at a time (``--jobs 2``).

Each hostile learner (``tests/labs_submissions/hostile``, written by ``make_samples.py``) solved lab 1
correctly and added an attack in a cell after the last test, so the score its honest part earns is
10; ``h-shadow`` answered wrongly and made its kernel say ✔ every way it could, so it earns 0;
``h-flood`` and ``h-engine`` (its own server at its engine's socket) are not graded. After
the batch the host is checked: no file written where it should not be, the grader's code unchanged,
the course's upstream images unchanged, no listener of the host's reached, no process, mount or
cgroup left, every honest neighbour at full marks.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import urllib.request
from pathlib import Path

import nbformat
import pytest

from labcore.state import REPO, load_state
from asroot.grading.sandbox import CGROUP_ROOT, Limits

from gradingutil import HOSTILE, assert_nothing_left, grade

pytestmark = [pytest.mark.engine, pytest.mark.slow]

CELL_TIMEOUT = 30
SUBMISSION_TIMEOUT = 150
EXPECTED = {
    ("alice", "lab1"): [3, 3, 4],
    ("alice", "lab3"): [3, 3, 4],
    ("h-files", "lab1"): [3, 3, 4],  # -v /:/host, --privileged, the grader's code, reading, cgroups
    ("h-net", "lab1"): [3, 3, 4],
    ("h-pidhost", "lab1"): [3, 3, 4],
    ("h-resources", "lab1"): [3, 3, 4],
    ("h-hang", "lab1"): [3, 3, 4],
    ("h-shadow", "lab1"): [0, 0, 0],
}
FLOODED = ("h-flood", "lab1")  # asks root's side to hold too much: not graded, and root holds little
SWAPPED = ("h-engine", "lab1")  # its own server at the engine's socket, relaying to the engine: not graded
MARK = "PWNED"
ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, " \
         "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


class Listener:
    """A TCP listener on the host's loopback that counts who reached it (the attack's target)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in range(5000, 5201):
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            conn.close()


def _digest(addr: str, repo: str, ref: str) -> str:
    req = urllib.request.Request(f"http://{addr}/v2/{repo}/manifests/{ref}", method="HEAD", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Docker-Content-Digest", "")


def _grading_code() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((REPO / "labs" / "grading").iterdir())
            if p.is_file()}


def _marked() -> list[str]:
    """Files an attack named with the marker, wherever an attack may have reached."""
    found = []
    for d in (Path("/"), Path("/root"), Path("/etc"), Path("/tmp"), Path("/var/tmp"), REPO, REPO / "labs" / "grading"):
        found += [str(p) for p in d.glob(f"{MARK}*")]
    return found


def _outputs(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / "lab1" / "lab1.ipynb", as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    st = load_state()
    listener = Listener()
    before = {"code": _grading_code(), "marked": _marked(), "etc": set(os.listdir("/etc")),
              "root": set(os.listdir("/root")),
              "upstream": {r: _digest(st.upstream, f"library/{r}", t)
                           for r, t in (("busybox", "1.35"), ("nginx", "1.22"))},
              "mirror": _digest(st.mirror, "library/busybox", "1.35")}
    b = grade(tmp_path_factory.mktemp("hostile"), HOSTILE, "--cell-timeout", str(CELL_TIMEOUT),
              "--submission-timeout", str(SUBMISSION_TIMEOUT))
    return {**vars(b), "before": before, "listener": listener, "state": st}


def test_batch_completes(batch):
    assert batch["rc"] == 0
    assert set(batch["report"]) == set(EXPECTED) | {FLOODED, SWAPPED}


def test_a_flood_is_the_submissions_problem_not_roots(batch):
    """600 check requests with 60 KB answers, 3 MB of output, 3 MB on stderr: the check service stops at
    its cap, the submission is "not graded" with the reason, and what root keeps of it stays small."""
    r = batch["report"][FLOODED]
    assert r["not_graded"] and "checks" in r["problem"], r["problem"]
    kept = sum(f.stat().st_size for f in batch["course"].rglob("*") if f.is_file() and "h-flood" in str(f))
    assert kept < 16 << 20, f"root kept {kept >> 20} MiB of the flooding submission"
    run = Path("/run/dockerlab-grade")
    assert not run.exists() or sum(f.stat().st_size for f in run.rglob("*") if f.is_file()) < 1 << 20


def test_a_submission_that_swaps_its_engines_socket_is_not_graded(batch):
    """Lab 1 solved right, and before any check a server of its own at the engine's socket relays to the
    engine: root's checks ask only the very dockerd the sandbox started (pid and start time), so the
    submission is "not graded" with the reason instead of graded on what its stand-in relayed. (What this
    cannot catch: a submission controls its own engine, see NOTES.md.)"""
    r = batch["report"][SWAPPED]
    assert r["not_graded"] and "another process" in r["problem"], r


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_exact_scores(batch, who):
    r = batch["report"][who]
    assert [t["score"] for t in r["tasks"]] == EXPECTED[who], (r["tasks"], r["problem"])
    assert not r["not_graded"], r["problem"]


def test_every_attack_ran(batch):
    """The attacks really executed (else the checks below would prove nothing)."""
    for who in ("h-files", "h-net"):
        assert "ATTACK-RAN" in _outputs(batch["course"], who), who
    assert _outputs(batch["course"], "h-files").count("ATTACK-RAN") == 3
    assert "uid 0 " not in _outputs(batch["course"], "h-files"), "the kernel ran as root"
    # the hang and the kill cost these two their nbgrader run, which the report says
    assert batch["report"]["h-hang", "lab1"]["problem"]
    assert batch["report"]["h-pidhost", "lab1"]["problem"]


def test_no_file_written_on_the_host(batch):
    assert _marked() == batch["before"]["marked"]
    assert set(os.listdir("/etc")) == batch["before"]["etc"]
    assert set(os.listdir("/root")) == batch["before"]["root"]
    assert "WROTE []" in _outputs(batch["course"], "h-files")


def test_grading_code_unchanged(batch):
    assert _grading_code() == batch["before"]["code"]


def test_no_host_listener_reached(batch):
    assert batch["listener"].hits == 0
    out = _outputs(batch["course"], "h-net")
    assert f":{batch['listener'].port}'" not in out.split("KERNEL-REACHED", 1)[1].split("\n", 1)[0]


def test_course_images_unchanged(batch):
    st = batch["state"]
    now = {r: _digest(st.upstream, f"library/{r}", t) for r, t in (("busybox", "1.35"), ("nginx", "1.22"))}
    assert now == batch["before"]["upstream"]
    assert _digest(st.mirror, "library/busybox", "1.35") == batch["before"]["mirror"]


def test_cgroup_escape_stayed_inside(batch):
    out = _outputs(batch["course"], "h-files")
    moved = out.split("MOVED", 1)[1].split("\n", 1)[0]
    assert "dockerlab-grade-" in moved or moved.strip() == "[]"
    for path in moved.strip(" []").split(","):
        path = path.strip().strip("'")
        assert not path or "/dockerlab-grade-" in path, path
    assert not list(CGROUP_ROOT.glob("*/escape")) and not (CGROUP_ROOT / "escape").exists()


def test_nothing_to_read(batch):
    out = _outputs(batch["course"], "h-files")
    assert "PROBE True" in out
    assert "LEAKED []" in out, out


def test_limits_held(batch):
    r = batch["report"]["h-resources", "lab1"]
    assert r["peak_memory_mb"] <= Limits().memory_mb + 1
    assert r["limit_hits"].get("pids", 0) > 0, "the fork bomb met no pids limit"
    assert r["seconds"] < SUBMISSION_TIMEOUT + 60
    assert batch["report"]["h-hang", "lab1"]["seconds"] < SUBMISSION_TIMEOUT + 60


def test_nothing_left_behind(batch):
    assert_nothing_left(batch["course"])
    escapees = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith("dockerlab-escapee")]
    assert not escapees
    with socket.socket() as s:  # the squatter's 0.0.0.0:8082 never was the host's
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 8082))


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
