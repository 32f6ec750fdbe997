"""The arm64 course image's smoke test, under emulation (qemu-user-static's binfmt_misc entry) in the
throwaway rootful engine of ``conftest.py``: the image is arm64 through and through (its Python says
``aarch64``), its inner rootless engine (the engine role, as a learner pod runs it) answers
``docker version`` as an arm64 engine, and a course kernel (ipykernel, as the course kernel spec
starts it) imports ``kernel_ext`` and reaches that engine.

Opt-in twice: root (a rootful dockerd) and the arm64 archive, which takes long to build here::

    sudo ./lab image build --arch arm64          # courseimage/README.md: emulation set-up first
    sudo .venv/bin/python -m pytest tests/image/test_arm64.py
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from pathlib import Path

import pytest

from .conftest import ARCHIVE
from .imageutil import Docker

ARM64 = ARCHIVE.with_name("course-image-arm64.tar")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root"),
    pytest.mark.skipif(not ARM64.exists(), reason=f"no {ARM64}: run 'sudo ./lab image build --arch arm64' first"),
    pytest.mark.skipif(not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(),
                       reason="no qemu-aarch64 binfmt_misc entry (courseimage/README.md)"),
]

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


def test_arm64_image_under_emulation(desktop: Docker) -> None:
    tag = _tag()
    desktop("load", "-i", str(ARM64), timeout=900)
    assert desktop("image", "inspect", "-f", "{{.Architecture}} {{.Os}}", tag).stdout.split() == ["arm64", "linux"]
    name = "dlimg-arm64"
    t0 = time.monotonic()
    desktop("run", "-d", "--name", name, "--platform", "linux/arm64", "--privileged", tag,
            "engine", f"--socket={SOCK}", "--data=/home/learner/engine")
    try:
        deadline = time.monotonic() + 900
        while True:
            r = desktop("exec", name, "docker", "-H", f"unix://{SOCK}", "version", "--format",
                        "{{.Server.Version}} {{.Server.Arch}} {{.Client.Arch}}", check=False, timeout=300)
            if r.returncode == 0:
                break
            running = desktop("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            if running != "true" or time.monotonic() > deadline:
                logs = desktop("logs", name, check=False)
                raise AssertionError("the arm64 engine role did not answer:\n" + (logs.stdout + logs.stderr)[-4000:])
            time.sleep(5)
        engine_up = time.monotonic() - t0
        version, server_arch, client_arch = r.stdout.split()
        assert version.startswith("28.") and server_arch == client_arch == "arm64", r.stdout
        out = json.loads(desktop("exec", name, "python", "-c", KERNEL, timeout=900).stdout.strip().splitlines()[-1])
        lines = out.strip().splitlines()
        assert lines[0] == "aarch64 kernel_ext", out
        assert lines[1].split() == [version, "arm64"], out
        print(f"\narm64 under emulation: engine {version} answered after {engine_up:.0f} s; kernel: {out!r}")
    finally:
        desktop("stop", "-t", "30", name, check=False, timeout=120)
        desktop("rm", "-f", "-v", name, check=False)
        desktop("rmi", tag, check=False)
