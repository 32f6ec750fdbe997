"""The arm64 course image's smoke test, under emulation (qemu-user-static's binfmt_misc entry) in the
throwaway rootful engine of ``conftest.py``: the image is arm64 through and through (its Python says
``aarch64``), its inner rootless engine (the engine role, as a learner pod runs it) answers
``docker version`` as an arm64 engine, and a course kernel (ipykernel, as the course kernel spec
starts it) imports ``kernel_ext`` and reaches that engine.

Root (a rootful dockerd) and the arm64 archive; ``./lab test`` builds it (``tests.support.imagebuild``). By hand::

    sudo ./lab image build --arch arm64          # courseimage/README.md: emulation set-up first
    sudo .venv/bin/python -m pytest tests/image/test_arm64.py
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Iterator

import pytest

from .conftest import ARM64, need_arm64
from .imageutil import Docker

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root"),
]


@pytest.fixture(scope="module", autouse=True)
def _arm64() -> None:
    """Before the module's other fixtures (autouse first within a scope): skip, or fail in ./lab test."""
    need_arm64()


SOCK = "/home/learner/sock/docker.sock"
# The course kernel's start (labctl.jupyter.install_kernel: ipykernel_launcher in the image's venv),
# driven by jupyter_client; the kernel's own output is printed.
KERNEL = """
import json, os
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "DOCKER_HOST": "unix://%s"})
out = []
def hook(msg):
    if msg["msg_type"] == "stream":
        out.append(msg["content"]["text"])
    elif msg["msg_type"] == "error":
        out.append(msg["content"]["ename"] + ": " + msg["content"]["evalue"])
for code in ["import platform, kernel_ext; print(platform.machine(), kernel_ext.__name__)",
             # chapter 2 in this image: no VM part, and it says why (not "install qemu")
             "from kernel_ext.vmcompare import compare; "
             "print(' '.join(n.key for n in compare(None, 1, 0, progress=lambda p: None).notes))",
             "!docker version --format '{{{{.Server.Version}}}} {{{{.Server.Arch}}}}'"]:  # IPython's ! halves {{ }}
    kc.execute_interactive(code, output_hook=hook, timeout=600)
km.shutdown_kernel(now=True)
print(json.dumps("".join(out)))
""" % SOCK


def _tag() -> str:
    with tarfile.open(ARM64) as tf:
        f = tf.extractfile("manifest.json")
        assert f is not None
        return str(json.load(f)[0]["RepoTags"][0])


@pytest.fixture(scope="module")
def arm64(desktop: Docker) -> Iterator[str]:
    tag = _tag()
    desktop("load", "-i", str(ARM64), timeout=900)
    try:
        yield tag
    finally:
        desktop("rmi", tag, check=False)


def test_arm64_image_is_arm64_and_its_kernel_imports_kernel_ext(desktop: Docker, arm64: str) -> None:
    assert desktop("image", "inspect", "-f", "{{.Architecture}} {{.Os}}", arm64).stdout.split() == ["arm64", "linux"]
    out = json.loads(desktop("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "python", arm64,
                             "-c", KERNEL, timeout=900).stdout.strip().splitlines()[-1])
    lines = out.strip().splitlines()
    assert lines[0] == "aarch64 kernel_ext" and "vm.not_in_image" in lines[1].split(), out
    assert "vm.qemu_missing" not in lines[1], out


# The host's capability bounding set may lack some (this machine's lacks CAP_SYS_RESOURCE), so not
# --privileged: what a rootful dockerd needs to start and answer, as root in the container.
ROOTFUL = ["--user", "0:0", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
           "--security-opt", "systempaths=unconfined", "--mount", "type=tmpfs,dst=/var/lib/docker"]
ENGINE_SH = ('R=$(ls -d /opt/dockerlab/engine/*/); export PATH=$R/usr/bin:$R/usr/sbin:$PATH; '
             'mkdir -p /home/learner/sock; exec dockerd --iptables=false --ip-forward=false --bridge=none '
             f'-G learner -H unix://{SOCK}')


def _wait_for_engine(desktop: Docker, name: str) -> tuple[list[str], float]:
    t0 = time.monotonic()
    while True:
        r = desktop("exec", name, "docker", "-H", f"unix://{SOCK}", "version", "--format",
                    "{{.Server.Version}} {{.Server.Arch}} {{.Client.Arch}}", check=False, timeout=300)
        if r.returncode == 0:
            return r.stdout.split(), time.monotonic() - t0
        running = desktop("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
        if running != "true" or time.monotonic() - t0 > 900:
            logs = desktop("logs", name, check=False)
            raise AssertionError(f"the arm64 engine in {name} did not answer:\n" + (logs.stdout + logs.stderr)[-4000:])
        time.sleep(3)


def test_arm64_engine_answers_and_the_kernel_reaches_it(desktop: Docker, arm64: str) -> None:
    """The image's arm64 engine (Debian's dockerd and containerd, the image's runc) and CLI answer
    ``docker version`` under emulation, and the course kernel reaches it. Run as root (rootful): see
    the next test for why the rootless engine cannot run under qemu-user."""
    name = "dlimg-arm64"
    desktop("run", "-d", "--name", name, "--platform", "linux/arm64", *ROOTFUL, "--entrypoint", "sh", arm64,
            "-c", ENGINE_SH)
    try:
        (version, server_arch, client_arch), took = _wait_for_engine(desktop, name)
        assert version.startswith("28.") and server_arch == client_arch == "arm64", (version, server_arch)
        # the kernel as the learner (the socket's group is the learner's: dockerd -G)
        out = json.loads(desktop("exec", "--user", "learner", name, "python", "-c", KERNEL,
                                 timeout=900).stdout.strip().splitlines()[-1])
        lines = out.strip().splitlines()
        assert lines[0] == "aarch64 kernel_ext" and lines[2].split() == [version, "arm64"], out
        print(f"\narm64 under emulation: engine {version} answered after {took:.0f} s; the kernel said {out!r}")
    finally:
        desktop("rm", "-f", "-v", name, check=False, timeout=120)


@pytest.mark.xfail(strict=True, reason="qemu-user (Debian 12's 7.2, trixie's 10.0) answers RootlessKit's "
                   "clone(CLONE_NEWUSER|CLONE_NEWNS) with EINVAL: the rootless engine role runs on arm64 "
                   "hardware only")
def test_arm64_rootless_engine_role_under_emulation(desktop: Docker, arm64: str) -> None:
    name = "dlimg-arm64-rootless"
    desktop("run", "-d", "--name", name, "--platform", "linux/arm64", "--privileged", arm64,
            "engine", f"--socket={SOCK}", "--data=/home/learner/engine")
    try:
        (version, server_arch, _), _ = _wait_for_engine(desktop, name)
        assert version.startswith("28.") and server_arch == "arm64"
    finally:
        desktop("rm", "-f", "-v", name, check=False, timeout=120)
