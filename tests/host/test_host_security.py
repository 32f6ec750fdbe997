"""Nothing a learner does is root on the host, and nothing of the lab is open to other accounts.

Run as root after the account's suite, against the tests' own lab (``LAB_HOME``) and the learner's
own lab (``LAB_MAIN_HOME``), which root's ``./lab test`` brought up with work of the learner's in it.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import hostcheck
from labcore.state import REPO, LabPaths, load_state, paths

from hostutil import run_as

pytestmark = pytest.mark.engine


def _lab(home: str) -> tuple[LabPaths, object]:
    os.environ["LAB_HOME"] = home
    p = paths()
    return p, load_state(p)


@pytest.fixture(scope="module")
def jupyter_up(account: str) -> object:
    """JupyterLab of the tests' lab, started the way ./lab up starts it (as the account)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("LAB_")}
    r = run_as(account, sys.executable, "-m", "labctl", "up", "--no-browser", env={**env, "LAB_AS_ACCOUNT": "1",
               "HOME": pwd.getpwnam(account).pw_dir, "PYTHONPATH": str(REPO)}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    p, state = _lab(os.environ["LAB_HOME"])
    return state


def _lab_processes(account: str) -> list[tuple[int, str]]:
    uid = pwd.getpwnam(account).pw_uid
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            owner = d.stat().st_uid
        except OSError:
            continue
        if any(k in cmd for k in ("rootlesskit", "dockerd", "containerd", "jupyter-lab", "docker-registry",
                                  "ipykernel_launcher", "labcore.netns", "slirp4netns")):
            out.append((owner, cmd[:150]))
    return [(o, c) for o, c in out if o == 0 or o == uid]


def test_no_lab_process_runs_as_root(account: str, jupyter_up: object) -> None:
    procs = _lab_processes(account)
    assert any("jupyter-lab" in c for _, c in procs) and any("dockerd" in c for _, c in procs)
    as_root = [c for uid, c in procs if uid == 0 and "grade" not in c]
    assert not as_root, as_root


def test_a_learners_container_cannot_write_as_root(account: str) -> None:
    p, state = _lab(os.environ["LAB_HOME"])
    marker = f"dlab-pwned-{os.getpid()}"
    docker = [state.docker_cli]  # type: ignore[attr-defined]
    env = {"DOCKER_HOST": state.docker_host}  # type: ignore[attr-defined]
    attack = (f"touch /host/root/{marker}; touch /host/etc/{marker}; echo x >> /host/etc/passwd; "
              f"chmod 777 /host/etc/shadow; mkdir /host/usr/{marker}; id -u")
    r = run_as(account, *docker, "run", "--rm", "-v", "/:/host", "busybox:1.35", "sh", "-c", attack, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0"  # root inside the container ...
    assert "Permission denied" in r.stderr
    for made in (Path("/root") / marker, Path("/etc") / marker, Path("/usr") / marker):
        assert not made.exists()  # ... and nobody on the host
    assert oct(Path("/etc/shadow").stat().st_mode & 0o777) != "0o777"
    assert "x" not in Path("/etc/passwd").read_text().splitlines()[-1:]


def test_privileged_and_host_pid_give_nothing(account: str) -> None:
    """--privileged and --pid=host are accepted, and are the account's privileges, not root's."""
    p, state = _lab(os.environ["LAB_HOME"])
    env = {"DOCKER_HOST": state.docker_host}  # type: ignore[attr-defined]
    mounts = Path("/proc/mounts").read_text()
    r = run_as(account, state.docker_cli, "run", "--rm", "--privileged", "--pid=host", "-v", "/root:/hostroot",  # type: ignore[attr-defined]
               "busybox:1.35", "sh", "-c",
               "kill -9 1; mknod /tmp/disk b 254 0 && mount /tmp/disk /mnt; ls /hostroot; echo done", env=env)
    out = r.stdout + r.stderr
    assert "done" in out, out
    assert Path("/proc/1").exists() and "can't kill pid 1: Operation not permitted" in out
    assert "Permission denied" in out  # /root of the host stays closed
    assert "mknod" in out or "mount" in out  # no block device, no mount of the host's disk
    assert Path("/proc/mounts").read_text().count("\n") <= mounts.count("\n")


def test_a_second_account_can_read_nothing_of_the_lab(probe: str, jupyter_up: object) -> None:
    p, state = _lab(os.environ["LAB_HOME"])
    token_files = [p.state_file, p.jupyter / "config" / "jupyter_server_config.json", p.logs / "jupyter.log",
                   Path(state.docker_host.removeprefix("unix://"))]  # type: ignore[attr-defined]
    for f in token_files:
        assert f.exists(), f
        r = run_as(probe, "cat", str(f))
        assert r.returncode != 0 and ("Permission denied" in r.stderr or "No such" in r.stderr), (f, r.stdout[:80])
    r = run_as(probe, "ls", str(p.home))
    assert r.returncode != 0
    sock = state.docker_host  # type: ignore[attr-defined]
    r = run_as(probe, state.docker_cli, "-H", sock, "ps")  # type: ignore[attr-defined]
    assert r.returncode != 0 and "permission denied" in r.stderr.lower()


def test_the_token_is_in_no_command_line_and_jupyter_refuses_without_it(probe: str, jupyter_up: object) -> None:
    p, state = _lab(os.environ["LAB_HOME"])
    url = state.jupyter_url  # type: ignore[attr-defined]
    token = url.split("token=")[1]
    assert url.startswith("http://127.0.0.1:")
    everything = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
    assert token not in everything
    base = url.split("/lab/")[0]
    # What the probe could find (the URL without the token, its own guesses) gets 403, not a terminal.
    r = run_as(probe, sys.executable, "-c", f"""
import urllib.request, urllib.error
for t in ("", "?token=", "?token=0000"):
    req = urllib.request.Request("{base}/api/terminals" + t, data=b"{{}}", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5); print("OPEN")
    except urllib.error.HTTPError as e:
        print(e.code)
""")
    assert r.returncode == 0, r.stderr
    assert "OPEN" not in r.stdout and set(r.stdout.split()) <= {"403", "401"}, r.stdout
    ok = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(ok, timeout=5) as resp:  # the owner's token works: the test can fail
        assert resp.status == 200


def test_the_course_registry_is_read_only_to_the_learners_engine(account: str) -> None:
    from kernel_ext.registry import manifest_digest

    p, state = _lab(os.environ["LAB_HOME"])
    before = manifest_digest("library/busybox", "1.35", state.upstream)  # type: ignore[attr-defined]
    env = {"DOCKER_HOST": state.docker_host}  # type: ignore[attr-defined]
    target = f"{state.upstream}/library/busybox:1.35"  # type: ignore[attr-defined]
    run_as(account, state.docker_cli, "pull", "-q", "hello-world", env=env)  # type: ignore[attr-defined]
    run_as(account, state.docker_cli, "tag", "hello-world", target, env=env)  # type: ignore[attr-defined]
    r = run_as(account, state.docker_cli, "push", target, env=env)  # type: ignore[attr-defined]
    assert r.returncode != 0 and "405" in (r.stdout + r.stderr), r.stdout + r.stderr
    assert manifest_digest("library/busybox", "1.35", state.upstream) == before  # type: ignore[attr-defined]
    own = f"{state.registry}/me/hello:1"  # type: ignore[attr-defined]
    run_as(account, state.docker_cli, "tag", "hello-world", own, env=env)  # type: ignore[attr-defined]
    r = run_as(account, state.docker_cli, "push", own, env=env)  # type: ignore[attr-defined]
    assert r.returncode == 0, r.stderr  # the learner's own registry takes it
    run_as(account, state.docker_cli, "rmi", target, own, "hello-world", env=env)  # type: ignore[attr-defined]


def test_the_learners_own_work_survived_the_suite(account: str) -> None:
    main = os.environ.get("LAB_MAIN_HOME")
    if not main:
        pytest.skip("root's ./lab test plants the learner's work; this run did not")
    tests_home = os.environ["LAB_HOME"]
    p, state = _lab(main)
    env = {"DOCKER_HOST": state.docker_host}  # type: ignore[attr-defined]
    r = run_as(account, state.docker_cli, "ps", "--format", "{{.Names}}", env=env)  # type: ignore[attr-defined]
    assert hostcheck.LEARNER_CONTAINER in r.stdout.split(), r.stdout + r.stderr
    r = run_as(account, state.docker_cli, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", env=env)  # type: ignore[attr-defined]
    assert hostcheck.LEARNER_IMAGE in r.stdout.split(), r.stdout
    assert (p.course / hostcheck.LEARNER_FILE).read_text() == "mine\n"
    assert (Path(pwd.getpwnam(account).pw_dir) / hostcheck.LEARNER_FILE).read_text() == "mine\n"
    os.environ["LAB_HOME"] = tests_home
    assert state.docker_host != json.loads((Path(tests_home) / "state.json").read_text())["docker_host"]
