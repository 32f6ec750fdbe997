"""The course image, run with the README's one command under a throwaway rootful engine that plays
Docker Desktop's role (its own data root, exec root, bridge and subnet; removed afterwards, as
Docker Desktop runs one in its VM).

Root only (a rootful dockerd). Root's ``./lab test`` builds the archive as a throwaway account and runs
tests/image (``tests.support.imagebuild``); by hand, trusting the lab's account::

    sudo ./lab image build
    sudo .venv/bin/python -m pytest tests/image

What it proves: the learner's URL comes up; chapter 1's first exercise's check says ✘ before the
learner's command and ✔ after it, in the course kernel inside the image (through JupyterLab's own
REST and websocket API); after ``docker stop`` and a NEW container on the same volume, the learner's
notebook and their container are still there. Also: the OCI labels, no solutions in the image,
JupyterLab and the engine run as the unprivileged ``learner``.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from grader.course import LABS
from labcore import proc

from .conftest import IMAGE
from .imageutil import NOTEBOOK, Docker, JupyterServer, first_exercise, wait_for_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root")

VOLUME = "dockerlab-work"
# The README's command, as a learner types it (the port on the left is the test's free one).
RUN = ["run", "-d", "--privileged", "-v", f"{VOLUME}:/home/learner"]


def _start(docker: Docker, name: str) -> tuple[JupyterServer, float]:
    port = proc.free_port(18888)
    docker(*RUN, "--name", name, "-p", f"127.0.0.1:{port}:8888", IMAGE)
    token, took = wait_for_url(docker, name)
    server = JupyterServer(port, token)
    deadline = time.monotonic() + 30
    while server.status() != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert server.status() == 200, "JupyterLab printed its URL but does not answer on the published port"
    return server, took


def _stop(docker: Docker, name: str) -> None:
    docker("stop", "-t", "30", name, timeout=90)
    docker("rm", name)


def test_labels_and_no_solutions(desktop: Docker) -> None:
    labels = json.loads(desktop("inspect", "-f", "{{json .Config.Labels}}", IMAGE).stdout)
    assert labels["org.dockerlab.engine.version"].startswith("28.")
    assert len(labels["org.opencontainers.image.revision"].removesuffix("-dirty")) == 40
    assert labels["org.opencontainers.image.version"].startswith("0.")
    assert desktop("inspect", "-f", "{{.Config.User}}", IMAGE).stdout.strip() == "learner"
    found = desktop("run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
                    "ls /opt/dockerlab/labs; ls /opt/dockerlab/.git /opt/dockerlab/tests 2>&1; "
                    "ls /opt/dockerlab/seed/grading/release").stdout
    assert "source" not in found.split() and "src" not in found.split()
    assert "No such file" in found  # no .git, no tests
    assert set(LABS) <= set(found.split())
    # nbgrader's markers of solutions and hidden tests, anywhere in the image's file system: only in
    # nbgrader's own package (which defines them), never in a course file
    hits = desktop("run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
                   "grep -rlI -e 'BEGIN SOLUTION' -e 'BEGIN HIDDEN TESTS' / --exclude-dir=proc --exclude-dir=sys "
                   "--exclude-dir=dev 2>/dev/null; true", timeout=900).stdout.split()
    nbgrader = "/opt/dockerlab/.venv/lib/python3.11/site-packages/nbgrader/"
    assert hits and all(h.startswith(nbgrader) for h in hits), [h for h in hits if not h.startswith(nbgrader)]
    # the instructors' grading guide (it shows the markers) is not the learner's
    assert desktop("run", "--rm", "--entrypoint", "test", IMAGE, "-e", "/opt/dockerlab/labs/README.md",
                   check=False).returncode == 1


def test_first_exercise_and_the_work_survives_a_new_container(desktop: Docker) -> None:
    server, cold = _start(desktop, "dlimg-first")
    try:
        before, after, who = first_exercise(server)
        assert "✘" in before and "✔" not in before, before
        assert "✔" in after, after
        assert who.split() == ["learner", "1000"], who
        # the learner's own notebook, saved through JupyterLab
        mine = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "我的笔记：ch01-box 在后台运行"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        server.api("PUT", "/api/contents/notebooks/my-work.ipynb", {"type": "notebook", "content": mine})
        ps = desktop("exec", "dlimg-first", "ps", "-eo", "user:12,comm").stdout
        assert not [line for line in ps.splitlines() if line.split()[0] == "root"
                    and line.split()[1] in ("jupyter-lab", "dockerd", "docker-registry", "rootlesskit")], ps
    finally:
        _stop(desktop, "dlimg-first")

    server, warm = _start(desktop, "dlimg-second")
    try:
        saved = server.api("GET", "/api/contents/notebooks/my-work.ipynb")
        assert "ch01-box" in saved["content"]["cells"][0]["source"]
        kernel = server.start_kernel(NOTEBOOK)
        # IPython's ! expands {x}: {{{{ reaches docker as {{
        outs = server.execute(kernel, ["!docker ps -a --filter name=ch01-box --format '{{{{.Names}}}} {{{{.Image}}}}'",
                                       "!docker start ch01-box >/dev/null && "
                                       "docker inspect -f '{{{{.State.Running}}}}' ch01-box"])
        assert outs[0].split() == ["ch01-box", "busybox:1.35"], outs[0]
        assert outs[1].strip() == "true", outs[1]
    finally:
        _stop(desktop, "dlimg-second")
        desktop("volume", "rm", VOLUME, check=False)
    print(f"\nURL printed after: cold start {cold:.1f} s (new volume), warm start {warm:.1f} s (volume reused)")


def test_chapter_2_boots_its_vm_and_names_the_accelerator_it_found(desktop: Docker) -> None:
    """Chapter 2's container-vs-VM measurement inside the image (qemu, and the kernel and benchmark seeded into
    a new volume): the VM boots beside a container, and the result names the accelerator. With no /dev/kvm the
    learner may open (Docker Desktop's VM on a Mac has none; here the host's, root's, is not the learner's),
    that is TCG, and the note says why."""
    name, volume = "dlimg-vm", "dockerlab-vm"
    port = proc.free_port(18878)
    desktop("run", "-d", "--privileged", "-v", f"{volume}:/home/learner", "--name", name,
            "-p", f"127.0.0.1:{port}:8888", IMAGE)
    try:
        token, _ = wait_for_url(desktop, name)
        server = JupyterServer(port, token)
        kernel = server.start_kernel("notebooks/02-why-docker.ipynb")
        out = server.execute(kernel, [
            "from kernel_ext import connect\nfrom kernel_ext.vmcompare import compare\n"
            "c = compare(connect(), runs=1, density=0, progress=lambda p: None)\n"
            "print(c.accel, c.vm.start_s.median is not None, c.container.start_s.median is not None, "
            "' '.join(n.key for n in c.notes))\nprint(c)"], timeout=600)[0]
        first, table = out.split("\n", 1)
        accel, vm_booted, container_started, *notes = first.split()
        kvm_usable = desktop("exec", name, "test", "-r", "/dev/kvm", "-a", "-w", "/dev/kvm",
                             check=False).returncode == 0
        assert vm_booted == container_started == "True", out
        assert accel in ("kvm", "tcg") and (accel == "tcg" or kvm_usable), out
        if not kvm_usable:
            assert accel == "tcg" and "vm.kvm_absent" in notes, out
        assert accel.upper() in table and "vm.not_in_image" not in notes and "vm.qemu_missing" not in notes, out
    finally:
        _stop(desktop, name)
        desktop("volume", "rm", volume, check=False)


# What the inner rootless engine needs instead of --privileged (courseimage/README.md says why).
NARROW = ["--device", "/dev/net/tun", "--security-opt", "seccomp=unconfined",
          "--security-opt", "systempaths=unconfined"]


def test_narrower_privileges_suffice(desktop: Docker) -> None:
    port = proc.free_port(18898)
    name = "dlimg-narrow"
    desktop("run", "-d", *NARROW, "-v", "dockerlab-narrow:/home/learner", "--name", name,
            "-p", f"127.0.0.1:{port}:8888", IMAGE)
    try:
        token, _ = wait_for_url(desktop, name)
        server = JupyterServer(port, token)
        kernel = server.start_kernel(NOTEBOOK)
        out = server.execute(kernel, ["!docker pull -q busybox:1.35 >/dev/null && "
                                      "docker run --rm busybox:1.35 sh -c 'echo inside $(id -u)'"])[0]
        assert out.strip() == "inside 0", out
        caps = desktop("inspect", "-f", "{{.HostConfig.Privileged}} {{.HostConfig.CapAdd}}", name).stdout.split()
        assert caps == ["false", "[]"], caps
    finally:
        _stop(desktop, name)
        desktop("volume", "rm", "dockerlab-narrow", check=False)


@pytest.mark.parametrize("missing", range(3), ids=["tun", "seccomp", "systempaths"])
def test_each_of_them_is_needed_and_said(desktop: Docker, missing: int) -> None:
    """Without any one of the three, the container stops at once with one sentence naming them all."""
    flags = [NARROW[i:i + 2] for i in range(0, len(NARROW), 2)]
    args = [a for i, pair in enumerate(flags) if i != missing for a in pair]
    r = desktop("run", "--rm", *args, IMAGE, check=False, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "--privileged" in out and "systempaths=unconfined" in out and "Traceback" not in out, out
