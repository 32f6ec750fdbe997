"""What root takes from accounts it does not trust when it grades: the lab account's engine cache
(``gradeaccounts.engine_binaries``), the course directory nbgrader runs in, the files a sandbox
leaves. Each test plants what an account could and calls root's code on it directly (no batch)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from asroot.gradeaccounts import engine_binaries
from labcore.errors import LabFailure


@pytest.fixture()
def home(probe: str) -> Iterator[Path]:
    """A home of the probe account's (it plays the lab account), with an engine cache it controls."""
    top = Path(tempfile.mkdtemp(prefix="dlab-trust-", dir="/tmp"))
    os.chmod(top, 0o755)
    pw = pwd.getpwnam(probe)
    cache = top / ".cache" / "dockerlab" / "engine"
    cache.mkdir(parents=True)
    for d in [top, *top.rglob("*")]:
        os.chown(d, pw.pw_uid, pw.pw_gid)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture()
def pool_lock() -> Iterator[None]:
    """The grading lock (``./lab grade``'s): a grading run elsewhere on this machine keeps its sandboxes."""
    import fcntl

    from asroot.grading.sandbox import CONTROL

    CONTROL.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(CONTROL / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _plant(home: Path, probe: str, info: dict[str, str]) -> None:
    current = home / ".cache" / "dockerlab" / "engine" / "current.json"
    current.write_text(json.dumps(info))
    pw = pwd.getpwnam(probe)
    os.chown(current, pw.pw_uid, pw.pw_gid)


def test_engine_cache_version_and_root_are_not_paths_root_follows(home: Path, probe: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim"  # root's directory the version climbs to
    victim.mkdir()
    (victim / "keep").write_text("root's")
    secret = tmp_path / "secret"  # root's 0600 file the root names
    secret.mkdir()
    (secret / "key").write_text("root only")
    os.chmod(secret / "key", 0o600)
    base = tmp_path / "base"
    cache = home / ".cache" / "dockerlab" / "engine"
    (cache / "link").symlink_to(secret)
    climb = os.path.relpath(victim, base / "engine")
    for info in ({"version": climb, "root": str(secret)}, {"version": "28.5", "root": str(secret)},
                 {"version": "28.5", "root": str(cache / "link")}, {"version": "..", "root": str(cache)}):
        _plant(home, probe, info)
        with pytest.raises(LabFailure):
            engine_binaries(probe, base, home)
        assert (victim / "keep").read_text() == "root's"
        assert not list(base.rglob("key")), f"root copied its own secret for {info}"


def test_root_copies_no_more_of_the_accounts_engine_cache_than_its_cap(home: Path, probe: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The account's tree is what root unpacks as its own: a tree past the cap is refused, nothing kept."""
    import asroot.gradeaccounts as ga

    monkeypatch.setattr(ga, "ENGINE_COPY_CAP", 1 << 20)
    tree = home / ".cache" / "dockerlab" / "engine" / "28.5"
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "dockerd").write_bytes(os.urandom(600 << 10))
    pw = pwd.getpwnam(probe)
    for p in [tree, *tree.rglob("*")]:
        os.lchown(p, pw.pw_uid, pw.pw_gid)
    _plant(home, probe, {"version": "28.5", "root": str(tree)})
    base = tmp_path / "base"
    assert (Path(engine_binaries(probe, base, home).root) / "usr" / "bin" / "dockerd").stat().st_size == 600 << 10
    shutil.rmtree(base)
    (tree / "usr" / "bin" / "big").write_bytes(os.urandom(2 << 20))
    os.lchown(tree / "usr" / "bin" / "big", pw.pw_uid, pw.pw_gid)
    with pytest.raises(LabFailure, match=f"more than {1 << 20} bytes unpacked"):
        engine_binaries(probe, base, home)
    assert sorted(p.name for p in (base / "engine").iterdir()) == []


def test_what_the_account_plants_in_its_engine_cache_is_no_way_out_for_root(home: Path, probe: str,
                                                                            tmp_path: Path) -> None:
    """The account's tree holds a link named like root's mark of a whole copy and a device node (which root
    could make where the account cannot): root makes nothing where the link points, and refuses the device."""
    tree = home / ".cache" / "dockerlab" / "engine" / "28.5"
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "dockerd").write_text("#!/bin/sh\n")
    target = tmp_path / "nologin"  # stands for /etc/nologin
    (tree / ".complete").symlink_to(target)
    pw = pwd.getpwnam(probe)
    for p in [tree, *tree.rglob("*")]:
        os.lchown(p, pw.pw_uid, pw.pw_gid)
    _plant(home, probe, {"version": "28.5", "root": str(tree)})
    base = tmp_path / "base"
    copy = Path(engine_binaries(probe, base, home).root)
    assert not target.exists() and os.readlink(copy / ".complete") == str(target)
    os.mknod(tree / "usr" / "bin" / "disk", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.lchown(tree / "usr" / "bin" / "disk", pw.pw_uid, pw.pw_gid)
    _plant(home, probe, {"version": "28.6", "root": str(tree)})
    with pytest.raises(LabFailure, match="a device"):
        engine_binaries(probe, base, home)
    assert not (base / "engine" / "28.6").exists() and not (base / "engine" / ".28.6.tmp").exists()


@pytest.mark.timeout(120)
def test_a_fifo_for_the_engine_caches_record_does_not_hold_root(home: Path, probe: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import asroot.gradeaccounts as ga

    current = home / ".cache" / "dockerlab" / "engine" / "current.json"
    os.mkfifo(current)
    pw = pwd.getpwnam(probe)
    os.lchown(current, pw.pw_uid, pw.pw_gid)
    real = ga._read_as_account
    monkeypatch.setattr(ga, "_read_as_account", lambda account, path: real(account, path, timeout=2))
    with pytest.raises(LabFailure, match="not downloaded yet"):
        engine_binaries(probe, tmp_path / "base", home)
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(current).encode() in _cmdline(pid)]
    assert left == [], "the account's reader was left running"


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_engine_cache_is_read_with_the_accounts_rights(home: Path, probe: str, tmp_path: Path) -> None:
    """current.json and the tree are read as the account: a link to a file only root can read gives nothing."""
    cache = home / ".cache" / "dockerlab" / "engine"
    root_only = tmp_path / "current.json"
    root_only.write_text(json.dumps({"version": "28.5", "root": str(cache / "28.5")}))
    os.chmod(root_only, 0o600)
    tree = cache / "28.5"
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "dockerd").write_text("#!/bin/sh\n")
    os.chmod(tree / "usr" / "bin" / "dockerd", 0o700)
    (tree / "usr" / "bin" / "shadow").symlink_to("/etc/shadow")
    (tree / "rootfile").symlink_to(root_only)
    pw = pwd.getpwnam(probe)
    for p in [tree, *tree.rglob("*")]:
        os.lchown(p, pw.pw_uid, pw.pw_gid)
    (cache / "current.json").symlink_to(root_only)
    with pytest.raises(LabFailure):
        engine_binaries(probe, tmp_path / "base", home)
    (cache / "current.json").unlink()
    _plant(home, probe, {"version": "28.5", "root": str(tree)})
    got = engine_binaries(probe, tmp_path / "base", home)
    copy = Path(got.root)
    assert copy == tmp_path / "base" / "engine" / "28.5" / "root"
    dockerd = copy / "usr" / "bin" / "dockerd"
    st = dockerd.stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755  # root's, runnable by the grading accounts
    assert (copy / "usr" / "bin" / "shadow").is_symlink()  # a link stays a link: nothing of root's is copied
    assert (copy / "rootfile").is_symlink()
    assert os.lstat(copy / "rootfile").st_uid == 0


PLANT = "import pathlib; pathlib.Path({marker!r}).write_text('root ran it')\n"


def _planted(where: Path, marker: Path, uid: int, gid: int) -> None:
    """An nbgrader package and an nbgrader_config.py that leave ``marker`` if Python ever runs them."""
    (where / "nbgrader").mkdir(parents=True, exist_ok=True)
    (where / "nbgrader" / "__init__.py").write_text(PLANT.format(marker=str(marker)))
    (where / "nbgrader" / "__main__.py").write_text(PLANT.format(marker=str(marker)))
    (where / "nbgrader_config.py").write_text(PLANT.format(marker=str(marker)))
    for p in [where, *where.rglob("*")]:
        os.chown(p, uid, gid)


def test_root_runs_nbgrader_in_no_course_another_account_can_change(home: Path, probe: str, tmp_path: Path) -> None:
    from grader.course import Course

    pw = pwd.getpwnam(probe)
    marker = tmp_path / "ran"
    theirs = home / "grading"  # the lab account's own course directory (./lab grade generate as the account)
    theirs.mkdir()
    _planted(theirs, marker, pw.pw_uid, pw.pw_gid)
    below = home / "grading" / "roots"  # root's directory, but under theirs: they can rename it away
    below.mkdir()
    for course in (theirs, below):
        with pytest.raises(LabFailure):
            Course(course).nbgrader("--version")
    mine = tmp_path / "course"  # root's: nbgrader runs; a module on PYTHONPATH is not taken
    mine.mkdir()
    out = Course(mine).nbgrader("--version", env={"PYTHONPATH": str(theirs)})
    assert out.returncode == 0, out.stderr[-500:]
    assert not marker.exists(), "root ran Python the lab account planted"


def test_check_service_answers_only_its_sandboxs_account(probe: str, tmp_path: Path) -> None:
    """Another account's requests get nothing and are not recorded; empty connections (even the
    account's own, more than MAX_CHECKS of them) do not use up the service."""
    import subprocess
    import sys

    from asroot.grading.checkd import MAX_CHECKS
    from labcore.state import REPO

    top = Path(tempfile.mkdtemp(prefix="dlab-checkd-", dir="/tmp"))
    os.chmod(top, 0o755)
    sock, record = top / "checkd.sock", tmp_path / "verdicts.jsonl"
    uid = pwd.getpwnam(probe).pw_uid
    service = subprocess.Popen([sys.executable, "-m", "asroot.grading.checkd", str(sock), str(record), str(uid)],
                               env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LAB_HOME": str(tmp_path / "h")},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/")
    ask = ("import socket, sys, time\n"
           "def connect():\n"  # again while the service's backlog is full
           "    while True:\n"
           "        s = socket.socket(socket.AF_UNIX)\n"
           "        try:\n"
           "            s.connect(sys.argv[1])\n"
           "            return s\n"
           "        except BlockingIOError:\n"
           "            s.close()\n"
           "            time.sleep(0.01)\n"
           "for _ in range(int(sys.argv[2])):\n"
           "    connect().close()\n"  # connects, sends nothing, closes
           "s = connect(); s.settimeout(60)\n"
           "s.sendall(b'{\"check\": \"lab1.pin\", \"answers\": []}\\n')\n"
           "print(s.makefile().readline().strip())\n")
    try:
        assert service.stdout and b"checks served" in service.stdout.readline()
        other = subprocess.run([sys.executable, "-c", ask, str(sock), "3"], capture_output=True, text=True,
                               timeout=60)  # root: not the sandbox's account
        assert other.stdout.strip() == "", other.stdout
        assert not record.exists() or record.read_text() == ""
        own = subprocess.run(["runuser", "-u", probe, "--", "/usr/bin/python3", "-c", ask, str(sock),
                              str(MAX_CHECKS + 20)], capture_output=True, text=True, timeout=120)
        assert own.stdout.strip(), own.stderr[-800:]
        assert json.loads(own.stdout)["ok"] is False, own.stdout  # answered: no engine here
        assert len(record.read_text().splitlines()) == 1
    finally:
        service.kill()
        service.wait()
        shutil.rmtree(top, ignore_errors=True)


def test_a_sandbox_sees_no_other_sandbox(pool_lock: None) -> None:
    """Two sandboxes up at once: the later one's account finds only its own home and the engine's
    programs under the grading accounts' top; root's ctl/ is its account's group's alone."""
    import subprocess

    from asroot.gradeaccounts import BASE, ensure_pool
    from asroot.grading.sandbox import Sandbox

    first, second = (Sandbox(pw.pw_name) for pw in ensure_pool(2))
    try:
        first.create()
        (first.home / "ctl" / "checkd.sock").write_text("")  # where the first one's check service listens
        second.create()
        seen = subprocess.run(second.enter(["ls", "-A", str(BASE)]), capture_output=True, text=True, timeout=60)
        assert sorted(seen.stdout.split()) == sorted([second.account, "engine"]), seen.stdout + seen.stderr
        probe = subprocess.run(second.enter(["ls", str(first.home / "ctl")]), capture_output=True, text=True,
                               timeout=60)
        assert probe.returncode != 0 and "checkd.sock" not in probe.stdout
        own = subprocess.run(second.enter(["ls", str(second.home / "ctl")]), capture_output=True, timeout=60)
        assert own.returncode == 0
        st = os.stat(second.home / "ctl")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, second.pw.pw_gid, 0o750)
    finally:
        second.sweep()
        first.sweep()


def test_a_sandboxs_shared_memory_is_its_own(pool_lock: None) -> None:
    """A System V segment made in a sandbox is in its IPC namespace, not the host's (where it would
    outlive the sandbox, charged to no cgroup once the sandbox's is gone)."""
    import subprocess

    from asroot.gradeaccounts import ensure_pool
    from asroot.grading.sandbox import Sandbox

    box = Sandbox(ensure_pool(1)[0].pw_name)
    try:
        box.create()
        made = subprocess.run(box.enter(["ipcmk", "-M", "65536"]), capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        inside = subprocess.run(box.enter(["cat", "/proc/sysvipc/shm"]), capture_output=True, text=True, timeout=60)
        uid = str(box.pw.pw_uid)
        assert any(line.split()[7] == uid for line in inside.stdout.splitlines()[1:])  # the control
        host = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        assert not [line for line in host if line.split()[7] == uid], "the sandbox's segment is in the host's IPC"
    finally:
        box.sweep()


def test_check_service_reads_at_most_a_megabyte_of_a_page(tmp_path: Path) -> None:
    """A published port that answers without end: the check reads MAX_READ bytes, not the stream."""
    import http.server
    import threading

    from labs.grading.tasks import MAX_READ, _page

    sent = [0]

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            try:
                while sent[0] < 64 * MAX_READ:
                    self.wfile.write(b"x" * 65536)
                    sent[0] += 65536
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = _page(f"http://127.0.0.1:{server.server_address[1]}/")
        assert len(body) == MAX_READ
    finally:
        server.shutdown()
        server.server_close()


def test_check_service_reads_at_most_a_megabyte_of_a_file() -> None:
    """A file the submission made in a container, larger than MAX_READ: read_file gives up (None) without
    holding it; a small one is read. On the tests' lab engine (root's ./lab test keeps it up)."""
    import io
    import tarfile

    import docker

    from labcore.state import load_state
    from labs.grading.tasks import MAX_READ, read_file

    host = load_state().docker_host
    if not host or not os.path.exists(host.removeprefix("unix://")):
        pytest.skip("the tests' lab engine is not up (root's ./lab test keeps it up for tests/host)")
    try:
        client = docker.DockerClient(base_url=host, timeout=60)
    except docker.errors.DockerException:
        pytest.skip("the tests' lab engine does not answer (root's ./lab test keeps it up for tests/host)")
    buf = io.BytesIO()  # an image of two files, made here (no registry needed)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, size in (("big", 8 * MAX_READ), ("small", 5)):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"y" * size))
    ref = f"dlab-trust-{os.getpid()}"
    client.api.import_image_from_data(buf.getvalue(), repository=ref, tag="latest")
    try:
        assert read_file(client, f"{ref}:latest", "/small") == "yyyyy"
        assert read_file(client, f"{ref}:latest", "/big") is None
    finally:
        client.images.remove(f"{ref}:latest", force=True)
        client.close()


def test_root_follows_no_link_the_sandbox_account_planted(tmp_path: Path) -> None:
    """The autograded notebook and the logs root takes from a sandbox's HOME: a directory on the way
    pointed at another submission's (or any) files gives nothing; the account's own regular files come."""
    from types import SimpleNamespace
    from typing import cast

    from labcore.safefs import read_under as read_untrusted
    from asroot.grading.runner import _copy_logs
    from asroot.grading.sandbox import Sandbox

    victim = tmp_path / "victim"  # another learner's graded notebook, and root's logs
    (victim / "lab1").mkdir(parents=True)
    (victim / "lab1" / "lab1.ipynb").write_text("the victim's answers")
    (victim / "secret.log").write_text("root's log")
    home = tmp_path / "u"
    (home / "course" / "autograded" / "me").mkdir(parents=True)
    (home / "course" / "autograded" / "me" / "lab1").symlink_to(victim / "lab1")
    assert read_untrusted(home, "course", "autograded", "me", "lab1", "lab1.ipynb") is None
    (home / "course" / "autograded" / "me" / "lab1").unlink()
    (home / "course" / "autograded" / "me" / "lab1").mkdir()
    (home / "course" / "autograded" / "me" / "lab1" / "lab1.ipynb").write_text("mine")
    assert read_untrusted(home, "course", "autograded", "me", "lab1", "lab1.ipynb") == b"mine"  # the control

    control, work = tmp_path / "control", tmp_path / "work"
    control.mkdir()
    work.mkdir()
    (control / "logs").mkdir()
    box = cast(Sandbox, SimpleNamespace(user=home, control=control, logs=control / "logs"))
    (home / "logs").symlink_to(victim)
    _copy_logs(box, work)
    assert not list(work.iterdir()), "root copied through the account's logs link"
    (home / "logs").unlink()
    (home / "logs").mkdir()
    (home / "logs" / "linked.log").symlink_to(victim / "secret.log")
    (home / "logs" / "engine.log").write_text("the engine's log")
    _copy_logs(box, work)
    assert sorted(p.name for p in work.iterdir()) == ["sandbox-engine.log"]


def test_solutions_are_the_lab_accounts_alone(account: str, probe: str) -> None:
    """After the root step (system.prepare, as ./lab up/test/setup and classroom up run it) another account
    reads no solution, hidden test or sample answer, not even through the clone's .git; the lab account
    (its JupyterLab, its suite) reads them."""
    import subprocess

    from labcore.state import REPO
    from asroot.system import protect_solutions

    protect_solutions(account)
    files = [REPO / "labs" / "source" / "lab1" / "lab1.ipynb", REPO / "labs" / "src" / "lab1" / "lab1.md",
             REPO / "tests" / "labs_submissions" / "submitted" / "alice" / "lab1" / "lab1.ipynb"]
    for f in files:
        assert f.is_file(), f
        theirs = subprocess.run(["runuser", "-u", probe, "--", "head", "-c", "1", str(f)], capture_output=True)
        assert theirs.returncode != 0 and not theirs.stdout, f"{probe} reads {f}"
        ours = subprocess.run(["runuser", "-u", account, "--", "head", "-c", "1", str(f)], capture_output=True)
        assert ours.returncode == 0 and ours.stdout, f"{account} cannot read {f}"
    # the clone's history holds the same files: one `git show` printed every lab's solutions (review 19.1)
    if (REPO / ".git").is_dir():
        show = ["git", "-c", "safe.directory=*", "-C", str(REPO), "show", "HEAD:labs/src/lab1/lab1.md"]
        theirs = subprocess.run(["runuser", "-u", probe, "--", *show], capture_output=True, text=True)
        assert theirs.returncode != 0 and "BEGIN" not in theirs.stdout, f"{probe} reads the solutions through .git"
        listing = subprocess.run(["runuser", "-u", probe, "--", "ls", str(REPO / ".git" / "objects")],
                                 capture_output=True)
        assert listing.returncode != 0, f"{probe} lists .git/objects"
