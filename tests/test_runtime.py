"""The lab runtime: engine, registries, course images, `./lab` itself (real processes only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labctl.images import load_catalogue
from labcore.state import REPO, paths

pytestmark = pytest.mark.engine


def test_engine_is_rootless_current_and_uses_our_mirror(client, state) -> None:
    from labengine.enginepkgs import load_pins

    info = client.info()
    assert info["ServerVersion"].split("+")[0] == load_pins()["pins"]["docker.io"].split("+")[0]
    assert any("rootless" in opt for opt in info["SecurityOptions"])
    assert ["driver-type", "io.containerd.snapshotter.v1"] in info["DriverStatus"]  # the containerd store
    assert f"http://{state.mirror}/" in info["RegistryConfig"]["Mirrors"]
    sock = Path(state.docker_host.removeprefix("unix://"))
    assert sock.stat().st_mode & 0o077 == 0 and sock.parent.stat().st_mode & 0o077 == 0  # owner only
    assert sock.stat().st_uid == os.getuid() != 0


def test_every_catalogue_image_pulls_by_unqualified_name_through_the_mirror(fresh_engine, state) -> None:
    mirror_log = paths().logs / "registry-mirror.log"
    before = mirror_log.stat().st_size
    refs = sorted({f"{i.name.removeprefix('library/')}:{t}" for i in load_catalogue() for t in i.tags})
    for ref in refs:
        repo, tag = ref.rsplit(":", 1)
        fresh_engine.images.pull(repo, tag=tag)
        assert ref in fresh_engine.images.get(ref).tags
    served = mirror_log.read_text(errors="replace")[before:]
    assert "/v2/library/nginx/manifests/latest" in served  # the mirror, not the upstream, served it
    assert "/v2/dockerlab/greeting/manifests/v1" in served


def test_hello_world_prints_its_greeting(fresh_engine) -> None:
    out = fresh_engine.containers.run("hello-world", remove=True).decode()
    assert "Hello from Docker Lab!" in out and "The Docker client sent your command" in out


def test_nginx_serves_http_on_a_published_port(fresh_engine) -> None:
    from labcore.proc import free_port

    port = free_port(18080)
    c = fresh_engine.containers.run("nginx", detach=True, ports={"80/tcp": port})
    try:
        body = ""
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "Welcome to nginx!" in body
    finally:
        c.remove(force=True)


def test_images_record_real_history_and_labels(fresh_engine) -> None:
    img = fresh_engine.images.get("nginx:latest")
    steps = [h["CreatedBy"] for h in img.history()]
    assert any("apt-get install" in s and "nginx-light" in s for s in steps)
    assert any("ADD file:" in s for s in steps)  # debian's root file system layer underneath
    assert img.labels["org.opencontainers.image.title"] == "nginx"
    assert len(img.attrs["RootFS"]["Layers"]) >= 2


def test_moving_a_tag_upstream_leaves_a_dangling_image(fresh_engine, state) -> None:
    from kernel_ext.registry import manifest_digest, move_tag

    v1 = manifest_digest("dockerlab/greeting", "v1", state.upstream)
    with pytest.raises(Exception, match="405|Method Not Allowed"):  # the upstream itself is read-only
        move_tag("dockerlab/greeting", "latest", "v2", state.upstream)
    try:
        fresh_engine.images.pull("dockerlab/greeting", tag="latest")
        old = fresh_engine.images.get("dockerlab/greeting:latest").id
        for other in fresh_engine.images.get(old).tags:  # only `latest` may point at it
            if other != "dockerlab/greeting:latest":
                fresh_engine.images.remove(other)
        move_tag("dockerlab/greeting", "latest", "v2")  # the course's publisher (a unix socket)
        fresh_engine.images.pull("dockerlab/greeting", tag="latest")
        new = fresh_engine.images.get("dockerlab/greeting:latest").id
        assert new != old
        dangling = [i.id for i in fresh_engine.images.list(filters={"dangling": True})]
        assert old in dangling
    finally:
        move_tag("dockerlab/greeting", "latest", "v1")
    assert manifest_digest("dockerlab/greeting", "latest", state.upstream) == v1


def _lab(home: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_HOME": str(home), **(env_extra or {})}
    env.pop("DOCKER_HOST", None)
    return subprocess.run([str(REPO / "lab"), *args], capture_output=True, text=True, env=env, timeout=600)


def _push_attempts(port: int, stop: threading.Event, seen: list[str]) -> None:
    """What anyone on this machine gets when starting an upload to the upstream's TCP port, again and again."""
    while not stop.is_set():
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/dockerlab/intruder/blobs/uploads/", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                seen.append(str(r.status))
        except urllib.error.HTTPError as e:
            seen.append(str(e.code))
        except OSError:
            seen.append("closed")
        stop.wait(0.02)


@pytest.mark.slow
def test_second_up_is_idempotent_and_down_leaves_nothing(tmp_path, state) -> None:
    """A second lab (its own home, ports, engine) seeded with the published images but one: the first `up`
    publishes that one through the publisher while the upstream's port refuses every push (any account can
    reach it); `up` twice builds nothing the second time, and `down` stops every process it started."""
    home = tmp_path / "lab2"
    env_home = {**os.environ, "LAB_HOME": str(home)}
    run_dir = Path(subprocess.run([sys.executable, "-c", "from labcore.state import paths; print(paths().run)"],
                                  capture_output=True, text=True, env=env_home, cwd=REPO).stdout.strip())
    (home / "registry").mkdir(parents=True)
    shutil.copytree(paths().home / "registry" / "upstream", home / "registry" / "upstream")
    shutil.rmtree(home / "registry" / "upstream" / "docker" / "registry" / "v2" / "repositories" / "dockerlab" /
                  "greeting")
    ports = {"LAB_UPSTREAM_PORT": "15300", "LAB_MIRROR_PORT": "15301", "LAB_LEARNER_PORT": "15302"}
    stop, seen = threading.Event(), []
    prober = threading.Thread(target=_push_attempts, args=(15300, stop, seen), daemon=True)
    prober.start()
    try:
        try:
            first = _lab(home, "up", "--no-jupyter", env_extra=ports)
        finally:
            stop.set()
            prober.join()
        assert first.returncode == 0, first.stderr
        assert "building dockerlab/greeting" in first.stderr, first.stderr
        assert "405" in seen and "202" not in seen, sorted(set(seen))
        forwarder = int((run_dir / "lab-forward.pid").read_text())  # the engine's upstream is the read-only one again
        argv = Path(f"/proc/{forwarder}/cmdline").read_bytes().split(b"\0")
        assert b"labcore.netns" in argv and not [a for a in argv if b"=" in a], argv
        with urllib.request.urlopen(urllib.request.Request(
                "http://127.0.0.1:15300/v2/dockerlab/greeting/manifests/latest", method="HEAD",
                headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                                   "application/vnd.docker.distribution.manifest.list.v2+json, "
                                   "application/vnd.oci.image.manifest.v1+json, "
                                   "application/vnd.docker.distribution.manifest.v2+json"}), timeout=10) as r:
            assert r.status == 200  # published, and served by the read-only upstream
        second = _lab(home, "up", "--no-jupyter", env_extra=ports)
        assert second.returncode == 0, second.stderr
        assert "building" not in second.stderr and "started" not in second.stderr
        assert "fetching" not in second.stderr  # the engine's packages come from the cache
        env_out = _lab(home, "env").stdout
        assert f"export DOCKER_HOST=unix://{run_dir}/lab.sock" in env_out
        status = _lab(home, "status").stdout
        assert status.count("running") >= 5, status  # 4 registries and the engine
    finally:
        down = _lab(home, "down")
    assert down.returncode == 0, down.stderr
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(run_dir) not in procs and str(home) not in procs
    assert not run_dir.exists()  # the runtime directory goes with what ran in it


def test_down_keeps_a_runtime_directory_while_something_in_it_runs(tmp_path) -> None:
    from labctl.__main__ import _remove_run_dir
    from labcore.state import LabPaths

    p = LabPaths(home=tmp_path / "home", run=tmp_path / "run")
    p.run.mkdir()
    (p.run / "own-engine.pid").write_text(str(os.getpid()))  # a chapter's own engine, still on
    (p.run / "lab.pid").write_text("999999999")
    _remove_run_dir(p)
    assert (p.run / "own-engine.pid").exists()
    (p.run / "own-engine.pid").write_text("999999998")  # now stopped
    _remove_run_dir(p)
    assert not p.run.exists()
    p.run.symlink_to(tmp_path / "home", target_is_directory=True)  # a link in its place is never followed
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "mine").write_text("kept")
    _remove_run_dir(p)
    assert (tmp_path / "home" / "mine").read_text() == "kept" and p.run.is_symlink()


def test_port_taken_is_reported_and_another_port_used(tmp_path) -> None:
    """A registry port that another program holds: the lab says so and picks a free one."""
    import socket

    from labengine.registry import Registry

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        reg = Registry("probe", taken, tmp_path / "store", tmp_path, tmp_path)
        from labcore.errors import LabFailure

        with pytest.raises(LabFailure, match=f"Port {taken} .* is taken"):
            reg.start()
        assert reg.pid() is None  # nothing half-started


def test_doctor_checks_this_machine(state) -> None:
    out = subprocess.run([str(REPO / "lab"), "doctor"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("engine", "rootless", "image store", "cgroup", "registry mirror", "socket permissions", "KVM",
                 "graphviz"):
        assert name in out.stdout
    assert "io.containerd.snapshotter.v1" in out.stdout


def test_purge_refuses_a_directory_that_is_not_a_lab_home(tmp_path) -> None:
    precious = tmp_path / "not-a-lab"
    precious.mkdir()
    (precious / "thesis.tex").write_text("mine")
    r = _lab(precious, "down", "--purge")
    assert r.returncode == 1 and "is not a lab home" in r.stderr
    assert (precious / "thesis.tex").read_text() == "mine"


def test_the_course_kernel_is_what_the_oom_killer_takes_first(state) -> None:
    """A cell that fills a learner's memory limit costs that kernel, not their Jupyter server or engine
    (labcore.kernelspec.KERNEL_START): the kernel's oom_score_adj is 500 above what started it."""
    from jupyter_client.manager import start_new_kernel

    from labctl.jupyter import KERNEL_NAME

    km, kc = start_new_kernel(kernel_name=KERNEL_NAME)
    out: list[str] = []
    try:
        reply = kc.execute_interactive(
            "import sys; print(open('/proc/self/oom_score_adj').read().strip(), sys.argv[1:2])", timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply
    mine = int(Path("/proc/self/oom_score_adj").read_text())  # the kernel's parent's, as the server's
    assert "".join(out).strip() == f"{min(1000, mine + 500)} ['-f']", (mine, out)
