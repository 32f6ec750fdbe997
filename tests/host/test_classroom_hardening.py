"""The classroom's parts a member could abuse, each tried directly on the part (no classroom needed: a
few seconds in all, beside tests/host/test_classroom.py's end-to-end run): the relay, the Hub's login,
the members' run directories, root's writes into the hub account's directories, collect, the release
and mirror copies, the progress page."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asroot import classroom_netns
from asroot import classroom_relay
from labcore import netns

PREFIX = f"dltest-hard{os.getpid()}"


@pytest.fixture
def two_namespaces() -> Iterator[list[str]]:
    paths = [str(classroom_netns.ensure(PREFIX, m)) for m in ("a", "b")]
    yield paths
    for m in ("a", "b"):
        classroom_netns.remove(PREFIX, m)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


def _head(client: str = "") -> bytes:
    """A request head as the Hub's proxy sends it (``client``: the address it adds as X-Forwarded-For)."""
    xff = f"X-Forwarded-For: 192.0.2.1, {client}\r\n" if client else ""
    return f"GET /user/x/ HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n{xff}\r\n".encode()


async def _held(port: int, client: str = "") -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection through the relay whose request reached the member's side (echoed back), kept open;
    None if the relay closed it."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        w.write(_head(client))
        got = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return None
    assert got.startswith(b"GET /user/x/ HTTP/1.1\r\n") and b"Connection: close\r\n" in got, got
    assert b"keep-alive" not in got, "the relay passed on a request that would keep its connection for others"
    return r, w


async def _talks(port: int, client: str = "") -> bool:
    """A connection through the relay that gets its request back."""
    held = await _held(port, client)
    if held:
        held[1].close()
    return held is not None


async def _relayed_echo(path: str) -> tuple[classroom_relay.Namespace, int]:
    """An echo server inside the namespace ``path`` (the member's "JupyterLab") behind the relay's outward
    side: the relay's namespace state and the host port to reach it."""
    ns = classroom_relay.Namespace(path)
    host = classroom_relay._listener(0)  # noqa: SLF001
    port = host.getsockname()[1]
    inner = netns.listen_inside(path, [port])[0][port]
    await asyncio.start_server(_echo, sock=inner)
    await classroom_relay._outward(ns, port, host)  # noqa: SLF001
    return ns, port


def test_relay_one_members_held_connections_leave_the_others_working(two_namespaces, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(classroom_relay, "MAX_PER_NAMESPACE", 8)

    async def run() -> None:
        ports = []
        for path in two_namespaces:  # each member's "JupyterLab": an echo server inside their namespace
            ns = classroom_relay.Namespace(path)
            host = classroom_relay._listener(0)  # noqa: SLF001
            port = host.getsockname()[1]
            inner = netns.listen_inside(path, [port])[0][port]  # the project's one way in
            await asyncio.start_server(_echo, sock=inner)
            await classroom_relay._outward(ns, port, host)  # noqa: SLF001
            ports.append(port)
        a, b = ports
        held = []
        for i in range(8):  # member A holds their whole share open (from several addresses)
            conn = await _held(a, f"198.51.100.{i}")
            assert conn is not None
            held.append(conn)
        assert await _held(a, "198.51.100.99") is None  # one more: closed at once, nobody waits
        assert all([await _talks(b) for _ in range(5)]), "member B's connections failed while A held theirs"
        held[0][1].close()
        await asyncio.sleep(0.2)
        assert await _talks(a), "a slot A freed is not usable again"
        monkeypatch.setattr(classroom_relay, "IDLE_SECONDS", 0.5)
        idle = await _held(b)  # idle: the relay closes it
        assert idle is not None
        assert await asyncio.wait_for(idle[0].read(1), 10) == b"", "an idle connection stayed open"

    asyncio.run(run())


def test_relay_one_client_cannot_hold_a_members_share_and_only_the_proxys_word_counts(two_namespaces,  # type: ignore[no-untyped-def]
                                                                                       monkeypatch) -> None:
    """A third party holding requests to ``/user/NAME/`` (measured before: 64 held, that member's server
    answered 503): one client (the address the proxy names in X-Forwarded-For) holds at most
    MAX_PER_CLIENT of the member's share, the member still gets through. An X-Forwarded-For from a
    connection another account opened (not the proxy's, which runs as the relay's own account) is not
    believed: that connection is its uid's."""
    import pwd

    monkeypatch.setattr(classroom_relay, "MAX_PER_NAMESPACE", 8)
    monkeypatch.setattr(classroom_relay, "MAX_PER_CLIENT", 3)

    async def run() -> None:
        ns, port = await _relayed_echo(two_namespaces[0])
        third = [await _held(port, "203.0.113.9") for _ in range(6)]
        assert [c is not None for c in third] == [True] * 3 + [False] * 3, "one client held more than its part"
        assert await _talks(port, "198.51.100.7"), "the member could not get through while a third party held theirs"
        # Another account on the machine names the member's address: its connections are its own uid's.
        nobody = pwd.getpwnam("nobody")
        code = ("import socket, sys, time\nheld, ok = [], 0\nfor _ in range(5):\n"
                f"    s = socket.create_connection(('127.0.0.1', {port}))\n"
                f"    s.sendall({_head('198.51.100.7')!r})\n"
                "    s.settimeout(10)\n    try:\n        ok += s.recv(4) == b'GET '\n"
                "    except OSError:\n        pass\n"
                "    held.append(s)\nprint(ok, flush=True)\ntime.sleep(30)\n")
        child = await asyncio.create_subprocess_exec(
            "setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", sys.executable, "-c",
            code, stdout=asyncio.subprocess.PIPE)
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            assert line.strip() == b"3", f"another account's connections got {line!r} through (its uid's part is 3)"
            assert ns.clients == {"203.0.113.9": 3, f"uid {nobody.pw_uid}": 3}, ns.clients
            assert await _talks(port, "198.51.100.7"), "a forged X-Forwarded-For used up the member's part"
        finally:
            child.kill()
            await child.wait()
        for c in third:
            if c:
                c[1].close()

    asyncio.run(run())


def test_relay_requests_whose_head_never_comes_cannot_fill_a_members_share(two_namespaces,  # type: ignore[no-untyped-def]
                                                                           monkeypatch) -> None:
    """Review, session 7: a connection counted against the member's share before its head came let anyone
    fill the share with requests that never send their head (the proxy holds a head back until the body's
    first byte: a POST whose body never follows), each counted as nobody's client. Heads that do not come
    wait in a pool of their own, the oldest pushed out by a new one; the member still gets through."""
    monkeypatch.setattr(classroom_relay, "MAX_PER_NAMESPACE", 8)
    monkeypatch.setattr(classroom_relay, "MAX_WAITING", 4)

    async def run() -> None:
        ns, port = await _relayed_echo(two_namespaces[0])
        silent = []
        for _ in range(20):  # no head at all, and a head cut short
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"POST /user/x/api/contents HTTP/1.1\r\nContent-Length: 9" if len(silent) % 2 else b"")
            silent.append(w)
        await asyncio.sleep(0.3)
        assert len(ns.waiting) <= 4 and ns.open["out"] == 0, (len(ns.waiting), ns.open)
        assert await _talks(port, "198.51.100.7"), "requests without a head kept the member out"
        for w in silent:
            w.close()

    asyncio.run(run())


def test_relay_raises_its_open_files_limit_for_every_namespaces_share() -> None:
    """From a soft limit of 128 (the probe's starving relay): as many as 200 namespaces need, or as
    many as this machine lets root have (a container may cap the hard limit)."""
    code = ("import resource\nfrom asroot import classroom_relay as r\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "print(r.raise_nofile(r.nofile_needed(200, 2)), r.nofile_needed(200, 2), "
            "resource.getrlimit(resource.RLIMIT_NOFILE)[1])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    got, need, hard = map(int, out[-3:])
    assert need > 200 * 4 * classroom_relay.MAX_PER_NAMESPACE
    assert got >= min(need, hard) > 128


# -- the Hub's login ----------------------------------------------------------------------------

def _authenticator(tmp_path: Path):  # type: ignore[no-untyped-def]
    import json

    from asroot import classroom
    from classroom import auth as classroom_auth

    (tmp_path / "passwords.json").write_text(json.dumps({"learner1": classroom._hash("right")}))  # noqa: SLF001
    return classroom_auth.ClassroomAuthenticator(password_file=str(tmp_path / "passwords.json"))


def test_login_checks_passwords_off_the_hubs_event_loop(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """While a password is being checked, the Hub's loop serves others: here the check waits for a
    coroutine of that loop, which could never run if the check held it."""
    import threading

    from classroom import auth as classroom_auth

    auth = _authenticator(tmp_path)
    release = threading.Event()

    def slow_verify(password: str, stored: str) -> bool:
        return release.wait(20) and password == "right"

    monkeypatch.setattr(classroom_auth, "verify", slow_verify)

    async def run() -> str | None:
        login = asyncio.ensure_future(auth.authenticate(None, {"username": "learner1", "password": "right"}))
        await asyncio.sleep(0.05)
        release.set()  # the loop ran this while the check was under way
        return await login

    assert asyncio.run(run()) == "learner1"


def test_login_backs_off_a_name_after_failures(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from classroom import auth as classroom_auth

    auth = _authenticator(tmp_path)
    checks = []
    real = classroom_auth.verify
    monkeypatch.setattr(classroom_auth, "verify", lambda p, s: checks.append(p) or real(p, s))
    clock = [1000.0]
    monkeypatch.setattr(classroom_auth.time, "monotonic", lambda: clock[0])

    def login(password: str, name: str = "learner1") -> str | None:
        return asyncio.run(auth.authenticate(None, {"username": name, "password": password}))

    assert [login(f"guess{i}") for i in range(classroom_auth.FREE_FAILURES)] == [None] * classroom_auth.FREE_FAILURES
    assert login("right") is None, "the right password got in while the name was backed off"
    assert len(checks) == classroom_auth.FREE_FAILURES, "a backed-off name still cost an scrypt check"
    clock[0] += 1.5
    assert login("guess") is None  # one more failure: the delay doubles
    clock[0] += 1.5
    assert login("right") is None
    clock[0] += 1.0
    assert login("right") == "learner1"
    assert login("x" * 5000) is None and login("right", "nobody") is None
    assert len(checks) == classroom_auth.FREE_FAILURES + 2


# -- a member's run directory -------------------------------------------------------------------

def test_a_members_run_directory_is_roots_to_make_and_theirs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What the gate makes before dropping to the member: planted directories and links in its place
    are replaced, never followed; the member's server (state.paths) then keeps its sockets there, not
    in /tmp where another member could have made the directory first (review 9)."""
    import pwd
    import shutil
    import stat

    from asroot.classroom_enter import Refused, member_run, prepare_run

    member = pwd.getpwnam("nobody")
    root = Path(f"/run/dltest{os.getpid()}")  # as short as the classroom's: sockets go below
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    try:
        root.mkdir(mode=0o711)
        squat = member_run(member.pw_uid, root)
        squat.mkdir()
        os.chown(squat, 1, 1)  # an earlier account's (or anyone's) directory in its place
        (squat / "left.sock").write_text("")
        d = prepare_run(member, root)
        st = os.lstat(d)
        assert (st.st_uid, stat.S_IMODE(st.st_mode), os.listdir(d)) == (member.pw_uid, 0o700, [])
        shutil.rmtree(d)
        d.symlink_to(victim)
        prepare_run(member, root)
        assert not d.is_symlink() and os.lstat(d).st_uid == member.pw_uid
        assert (os.stat(victim).st_uid, stat.S_IMODE(os.stat(victim).st_mode)) == (0, 0o755)
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o711
        r = subprocess.run(["setpriv", f"--reuid={member.pw_uid}", f"--regid={member.pw_gid}", "--clear-groups",
                            "env", "-i", f"XDG_RUNTIME_DIR={d}", "LAB_HOME=/nonexistent/h",
                            f"PYTHONPATH={Path(__file__).resolve().parents[2]}", sys.executable, "-I", "-c",
                            "import sys; sys.path.insert(0, __import__('os').environ['PYTHONPATH'])\n"
                            "from labcore.state import paths; print(paths().run)"],
                           capture_output=True, text=True, check=True)
        assert r.stdout.strip().startswith(f"{d}/dockerlab-")
        os.chown(root, 1, 1)  # the parent must be root's
        with pytest.raises(Refused):
            prepare_run(member, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_mediator_gives_the_server_the_gates_run_directory_not_the_hubs(tmp_path: Path) -> None:
    """The server's environment (``env`` stands in for it) has the gate's run directory; its output goes to
    the member's own log, not to the Hub's stderr (the mediator's)."""
    import json

    from classroom.mediator import SERVER_LOG

    mediator = Path(__file__).resolve().parents[2] / "classroom" / "mediator.py"
    r = subprocess.run([sys.executable, "-I", "-S", str(mediator), "/usr/bin/env"],
                       input=json.dumps({"action": "spawn", "args": [], "env": {"XDG_RUNTIME_DIR": "/tmp/hubs"}}),
                       env={"XDG_RUNTIME_DIR": "/run/gates", "HOME": str(tmp_path)}, capture_output=True, text=True,
                       timeout=30)
    assert "XDG_RUNTIME_DIR=" not in r.stderr, "the server's output reached the Hub's stderr"
    log = tmp_path / SERVER_LOG
    assert "XDG_RUNTIME_DIR=/run/gates" in log.read_text().splitlines()
    assert log.stat().st_mode & 0o077 == 0


# -- root's writes where the hub account (or the lab account) could plant links ------------------

@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A root-owned secret and directory that nothing here may touch."""
    v = tmp_path / "victim"
    v.mkdir(mode=0o700)
    (v / "secret").write_text("root's")
    os.chmod(v / "secret", 0o600)
    return v


def _untouched(v: Path) -> bool:
    st, sf = os.stat(v), os.stat(v / "secret")
    return (st.st_uid, st.st_mode & 0o777, sf.st_uid, sf.st_mode & 0o777, (v / "secret").read_text()) == \
        (0, 0o700, 0, 0o600, "root's")


def test_roots_writes_into_the_hubs_directories_follow_no_link(tmp_path, victim) -> None:  # type: ignore[no-untyped-def]
    import pwd

    from asroot import classroom
    from labcore import proc
    from labcore.errors import LabFailure

    hub = pwd.getpwnam("nobody")  # stands in for dlhub
    hubdir = tmp_path / "hub"
    classroom._hub_dir(hubdir, hub)  # noqa: SLF001
    assert (os.stat(hubdir).st_uid, os.stat(hubdir).st_mode & 0o777) == (hub.pw_uid, 0o700)
    (hubdir / "logs").symlink_to(victim)  # what the hub account may plant in its own directory
    (hubdir / "run").write_text("")
    for d in ("logs", "run"):
        with pytest.raises(LabFailure):
            classroom._hub_dir(hubdir / d, hub)  # noqa: SLF001
    (hubdir / "jupyterhub_config.py").symlink_to(victim / "secret")
    classroom._write_hub_file(hubdir / "jupyterhub_config.py", "c = 1\n", hub)  # noqa: SLF001
    conf = hubdir / "jupyterhub_config.py"
    assert not conf.is_symlink() and conf.read_text() == "c = 1\n" and os.stat(conf).st_uid == hub.pw_uid
    (hubdir / "hub.log").symlink_to(victim / "secret")
    with pytest.raises(LabFailure):
        proc.start(["true"], hubdir / "hub.pid", hubdir / "hub.log")
    os.mkfifo(hubdir / "fifo.log")
    with pytest.raises(LabFailure):  # and does not hang on it
        proc.start(["true"], hubdir / "hub.pid", hubdir / "fifo.log")
    (hubdir / "ok.pid").symlink_to(victim / "secret")
    proc.start(["true"], hubdir / "ok.pid", hubdir / "ok.log")
    assert not (hubdir / "ok.pid").is_symlink()
    assert _untouched(victim)


def test_publish_release_and_the_mirror_copy_only_regular_files(tmp_path, victim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The lab account's release and registry storage, with links to root's secret planted in them
    (review 1c): neither root's copy holds them, nor anything but directories and regular files."""
    from asroot import classroom
    from labcore.state import LabPaths

    home = tmp_path / "labhome"
    rel = home / "grading" / "release"
    for lab in ("lab1", "lab2"):
        (rel / lab).mkdir(parents=True)
    (rel / "lab1" / "lab1.ipynb").write_text("{}")
    (rel / "lab2" / "lab2.ipynb").symlink_to(victim / "secret")
    (rel / "lab3").symlink_to(victim)
    os.link(victim / "secret", victim / "lab3.ipynb")
    blobs = home / "registry" / "upstream" / "docker" / "registry" / "v2" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "data").write_text("layer")
    (blobs / "link").symlink_to(victim / "secret")
    (blobs / "dir").symlink_to(victim)
    os.mkfifo(blobs / "fifo")
    monkeypatch.setattr(classroom, "paths", lambda: LabPaths(home=home, run=tmp_path / "run"))
    monkeypatch.setattr(classroom, "BASE", tmp_path / "base")
    monkeypatch.setattr(classroom, "RELEASE", tmp_path / "base" / "release")
    assert classroom.publish_release(rel) == ["lab1"]
    assert sorted(os.listdir(tmp_path / "base" / "release")) == ["lab1"]
    dst = classroom._mirror_storage()  # noqa: SLF001
    copied = dst / "docker" / "registry" / "v2" / "blobs"
    assert sorted(os.listdir(copied)) == ["data"]
    assert (copied / "data").read_text() == "layer" and os.stat(copied / "data").st_mode & 0o777 == 0o644
    (home / "registry").rename(home / "registry2")
    (home / "registry").symlink_to(home / "registry2")  # a link on the way
    from labcore.errors import LabFailure

    with pytest.raises(LabFailure):
        classroom._mirror_storage()  # noqa: SLF001
    assert _untouched(victim)


def test_collect_refuses_another_accounts_directory_and_writes_through_no_link(tmp_path, victim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json
    import pwd
    import types

    from asroot import classroom
    from classroom import config as classroom_config
    from labcore.errors import LabFailure

    learner = tmp_path / "learnerhome"
    (learner / ".dockerlab" / "course" / "labs" / "lab1").mkdir(parents=True)
    (learner / ".dockerlab" / "course" / "labs" / "lab1" / "lab1.ipynb").write_text('{"mine": 1}')
    (tmp_path / "release" / "lab1").mkdir(parents=True)
    (tmp_path / "classroom.json").write_text(json.dumps({"learners": ["learnerx"]}))
    monkeypatch.setattr(classroom, "CONFIG", tmp_path / "classroom.json")
    monkeypatch.setattr(classroom_config, "CONFIG", tmp_path / "classroom.json")  # ClassConfig.load reads it there
    monkeypatch.setattr(classroom, "RELEASE", tmp_path / "release")
    real = pwd.getpwnam
    monkeypatch.setattr(classroom.pwd, "getpwnam",
                        lambda n: types.SimpleNamespace(pw_dir=str(learner)) if n == "learnerx" else real(n))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)  # a directory another account made (and could fill with links)
    with pytest.raises(LabFailure):
        classroom.collect(theirs, say=lambda *_: None)
    assert os.listdir(theirs) == []
    out = tmp_path / "out"
    (out / "learnerx" / "lab1").mkdir(parents=True)
    (out / "learnerx" / "lab1" / "lab1.ipynb").symlink_to(victim / "secret")
    assert classroom.collect(out, say=lambda *_: None) == {"learnerx": ["lab1"]}
    got = out / "learnerx" / "lab1" / "lab1.ipynb"
    assert not got.is_symlink() and got.read_text() == '{"mine": 1}'
    assert os.stat(out).st_mode & 0o777 == 0o700
    assert _untouched(victim)


# -- the progress page --------------------------------------------------------------------------

def test_one_learners_answer_cannot_break_the_progress_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What comes back from a learner's progress run is theirs (they can ptrace it): wrong shapes, no
    JSON, too much of it, too deep; the page still renders, with the good learner's results (review 13)."""
    from classroom import progress_service

    enter = tmp_path / "enter"
    enter.write_text("#!/bin/sh\ncase \"$1\" in\n"
                     " good) echo '{\"1\": {\"1\": \"pass\", \"2\": \"fail\"}}';;\n"
                     " shape) echo '{\"1\": {\"x\": \"pass\", \"3\": [1]}, \"y\": \"z\", \"²\": {\"1\": \"pass\"}, "
                     "\"2\": {\"3\": {\"a\": 1}}, \"4\": {\"²\": \"pass\"}}';;\n"
                     " list) echo '[[1]]';;\n"
                     " big) yes '[1,' | head -c 2000000;;\n"
                     f" deep) {sys.executable} -c 'print(\"[\" * 200000 + \"]\" * 200000)';;\n"
                     " junk) echo 'Traceback';;\n"
                     "esac\n")
    enter.chmod(0o755)
    names = ["big", "deep", "good", "junk", "list", "shape"]

    async def users() -> list[dict[str, object]]:
        return [{"name": n, "servers": {"": {"ready": True}}} for n in names]

    monkeypatch.setattr(progress_service, "ENTER", str(enter))
    monkeypatch.setattr(progress_service, "_hub_users", users)
    monkeypatch.setattr(progress_service, "_cache", {})
    data = asyncio.run(progress_service.snapshot())
    got = {learner["name"]: learner["exercises"] for learner in data["learners"]}
    assert got == {"big": {}, "deep": {}, "good": {"1": {"1": "pass", "2": "fail"}}, "junk": {}, "list": {},
                   "shape": {}}
    page = progress_service.render(data, "en")
    assert page.count("✔") == 2 and "<th>shape</th>" in page  # one in the legend


# -- the code root's gate imports -----------------------------------------------------------------

def _clone(tmp: Path) -> Path:
    """A clone's packages with one deep module and its byte code, root's, as `classroom up` wants them."""
    from asroot import classroom

    for name in classroom.PACKAGES:
        deep = tmp / "clone" / name / "a" / "b"
        (deep / "__pycache__").mkdir(parents=True)
        (deep / "deep.py").write_text("X = 1\n")
        (deep / "__pycache__" / "deep.cpython-311.pyc").write_bytes(b"\0")
    site = tmp / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "extra.pth").write_text("import os\n")
    (tmp / "venv" / "bin").mkdir()
    subprocess.run(["chmod", "-R", "go-w,a+rX", str(tmp)], check=True)
    return tmp


@pytest.mark.parametrize("abuse", ["deep file a member owns", "byte code anyone may write", ".pth file a member owns",
                                   "link to a directory outside", "link to a missing file outside"])
def test_the_gate_refuses_code_anyone_but_root_could_change(tmp_path: Path, monkeypatch, abuse: str) -> None:  # type: ignore[no-untyped-def]
    """The gate imports the packages, the venv's .pth files and byte code as root: one file deep inside
    that someone else could change is enough to refuse, in one sentence."""
    from asroot import classroom
    from labcore.errors import LabFailure

    tmp = _clone(tmp_path)
    monkeypatch.setattr(classroom, "REPO", tmp / "clone")
    monkeypatch.setattr(classroom, "VENV_BIN", tmp / "venv" / "bin")
    classroom._code_is_roots()  # noqa: SLF001 -- root's alone (and this machine's venv and stdlib too)
    os.symlink("/etc/hostname", tmp / "clone" / "labcore" / "a" / "etc-file")  # a root-only file: fine
    classroom._code_is_roots()  # noqa: SLF001
    deep = tmp / "clone" / "labcore" / "a" / "b"
    nobody = 65534
    target = {"deep file a member owns": deep / "deep.py",
              "byte code anyone may write": deep / "__pycache__" / "deep.cpython-311.pyc",
              ".pth file a member owns": tmp / "venv" / "lib" / "python3.11" / "site-packages" / "extra.pth",
              "link to a directory outside": deep / "elsewhere",
              "link to a missing file outside": deep / "later.py"}[abuse]
    if abuse.startswith("link to a directory"):
        os.symlink("/var/tmp", target)
    elif abuse.startswith("link to a missing"):
        os.symlink("/var/tmp/later.py", target)
    elif abuse.startswith("byte code"):
        os.chmod(target, 0o666)
    else:
        os.chown(target, nobody, nobody)
    with pytest.raises(LabFailure) as e:
        classroom._code_is_roots()  # noqa: SLF001
    msg = str(e.value)
    assert str(target) in msg and "\n" not in msg and msg.count(". ") == 0, msg


# -- a member's own server log -----------------------------------------------------------------------

@pytest.fixture
def member_home() -> Iterator[Path]:
    """A home of ``nobody``'s (a member stands in: the mediator runs as the member)."""
    import shutil
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="dltest-home-", dir="/tmp"))
    os.chown(home, 65534, 65534)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def _spawn_as_nobody(home: Path, script: str) -> subprocess.CompletedProcess[str]:
    """The real mediator as ``nobody``, starting ``sh -c script`` as the member's "server"."""
    import json

    mediator = Path(__file__).resolve().parents[2] / "classroom" / "mediator.py"
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                           sys.executable, "-I", "-S", str(mediator), "/bin/sh"],
                          input=json.dumps({"action": "spawn", "args": ["-c", script], "env": {}}),
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=20)


def _log_when_done(home: Path) -> str:
    from classroom.mediator import SERVER_LOG

    log = home / SERVER_LOG
    for _ in range(200):
        if log.is_file() and log.read_bytes().rstrip().endswith(b"END"):
            break
        time.sleep(0.05)
    st = os.lstat(log)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 65534 and st.st_mode & 0o077 == 0
    return log.read_text(errors="replace")


@pytest.mark.parametrize("planted", ["fifo", "link", "directory"])
def test_what_a_member_plants_at_their_log_neither_hangs_nor_redirects_their_spawn(member_home: Path,
                                                                                   planted: str) -> None:
    """A FIFO at ``~/.dockerlab-server.log`` used to hang the member's own spawn (the open waited for a
    reader); a link or a directory there is replaced, never followed: the log is their regular file."""
    from classroom.mediator import SERVER_LOG

    log = member_home / SERVER_LOG
    elsewhere = member_home / "elsewhere"
    elsewhere.write_text("keep\n")
    if planted == "fifo":
        os.mkfifo(log)
    elif planted == "link":
        log.symlink_to(elsewhere)
    else:
        log.mkdir()
    for p in (log, elsewhere):
        os.lchown(p, 65534, 65534)
    r = _spawn_as_nobody(member_home, "echo started; sleep 1.2; echo END")
    assert '"ok": true' in r.stdout, (r.stdout, r.stderr)
    assert "started" in _log_when_done(member_home)
    assert elsewhere.read_text() == "keep\n"


def test_a_servers_flood_keeps_its_log_bounded(member_home: Path) -> None:
    """24 MiB of output: the log starts again at its cap and says so; the end is there."""
    from classroom.mediator import MAX_LOG

    r = _spawn_as_nobody(member_home, "sleep 1.2; head -c 25165824 /dev/zero | tr '\\0' x; echo; echo END")
    assert '"ok": true' in r.stdout, (r.stdout, r.stderr)
    text = _log_when_done(member_home)
    assert len(text) <= MAX_LOG and "it starts again here" in text and text.rstrip().endswith("END")
