"""The Kubernetes classroom's learner pod (deploy/kubernetes/values.yaml), played by containers of the
course image under the throwaway rootful engine of ``conftest.py``, with the security context
KubeSpawner's own ``make_pod`` gives each container from those values (the same pod
``tests/test_deploy_kubernetes.py`` checks on paper):

* the **engine** role as uid 1000 with exactly the pod's capabilities (all dropped but SETUID and
  SETGID, in the bounding set only), Unconfined seccomp, an unmasked /proc, ``/dev/net/tun`` (the
  device plugin's), no privilege, its socket in a directory shared with the notebook (the pod's
  ``engine-sock`` emptyDir), its data root in another (``engine-data``);
* the **notebook** role as uid 1000 / gid 100, read-only root, every capability dropped,
  no_new_privs, the runtime's default seccomp, in the engine's network namespace (a pod's containers
  share one; not the host's), the home a volume (the PVC);
* the **course mirror** as course-mirror.yaml runs it: ``docker-registry`` of the same image over the
  course registry it carries, uid 65532, read-only, its config the ConfigMap's.

What it proves: the notebook role's course kernel answers ``docker version`` through the shared socket
(the engine role's 28.5), and pulls and runs a course image through the mirror. What only a cluster
can prove (hostUsers: false, the device plugin, NetworkPolicies, the Hub) is in deploy/kubernetes/README.md.

Root, like the rest of tests/image (``./lab test`` runs it); by hand::

    sudo ./lab image build
    sudo .venv/bin/python -m pytest tests/image/test_pod_roles.py
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labcore import proc
from tests.support.rootful_engine import pick_subnet
from tests.test_deploy_kubernetes import DEPLOY, helm_merge, learner_pod

from .conftest import IMAGE
from .imageutil import NOTEBOOK, Docker, JupyterServer, wait_for_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root")

POD_IP_OFFSET = 10  # the pod's address in the test's network: <subnet>.10, the mirror .11
NETWORK = "dlpod"


def security_flags(pod: Any, c: Any) -> list[str]:
    """A pod container's security context (the container's over the pod's) as docker run options."""
    def eff(field: str) -> Any:
        own = getattr(c.security_context, field, None) if c.security_context else None
        return own if own is not None else getattr(pod.spec.security_context, field, None)

    assert not eff("privileged"), c.name
    flags = ["--user", f"{eff('run_as_user')}:{eff('run_as_group')}"]
    fs_group = pod.spec.security_context.fs_group if pod.spec.security_context else None
    if fs_group is not None:
        flags += ["--group-add", str(fs_group)]
    caps = c.security_context.capabilities
    flags += [f"--cap-drop={cap}" for cap in caps.drop or []] + [f"--cap-add={cap}" for cap in caps.add or []]
    if eff("allow_privilege_escalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    seccomp = eff("seccomp_profile")
    assert seccomp.type in ("RuntimeDefault", "Unconfined"), seccomp
    if seccomp.type == "Unconfined":
        flags += ["--security-opt", "seccomp=unconfined"]
    # appArmorProfile: this machine's kernel has no AppArmor (the values' Unconfined is not exercised here)
    if eff("proc_mount") == "Unmasked":
        flags += ["--security-opt", "systempaths=unconfined"]
    if eff("read_only_root_filesystem"):
        flags.append("--read-only")
    limits = (c.resources.limits or {}) if c.resources else {}
    if any(k.endswith("/tun") for k in limits):  # the device plugin's /dev/net/tun
        flags += ["--device", "/dev/net/tun"]
    if "memory" in limits:
        flags += ["--memory", str(limits["memory"]).replace("Mi", "m").replace("G", "g")]
    return flags


def env_flags(c: Any, pod_ip: str) -> list[str]:
    out = []
    for e in c.env or []:
        value = pod_ip if e.value_from and e.value_from.field_ref.field_path == "status.podIP" else e.value
        out += ["-e", f"{e.name}={value}"]
    return out


def mount_flags(pod: Any, c: Any, top: Path, home_volume: str) -> list[str]:
    """emptyDirs as host directories (mode 0777, as the kubelet makes them), the PVC as a named volume."""
    kinds = {v.name: v for v in pod.spec.volumes}
    out = []
    for m in c.volume_mounts or []:
        v = kinds[m.name]
        if v.empty_dir is not None:
            src = top / m.name
            src.mkdir(exist_ok=True)
            os.chmod(src, 0o777)
            out += ["-v", f"{src}:{m.mount_path}"]
        elif v.persistent_volume_claim is not None:
            out += ["-v", f"{home_volume}:{m.mount_path}"]
    return out


@pytest.fixture(scope="module")
def values() -> dict:
    """values.yaml over the chart's defaults, as Helm merges them (tests/test_deploy_kubernetes.py)."""
    return helm_merge(yaml.safe_load((DEPLOY / "z2jh" / "values.yaml").read_text()),
                      yaml.safe_load((DEPLOY / "values.yaml").read_text()))


@pytest.fixture
def pod_net(desktop: Docker) -> Iterator[str]:
    subnet = pick_subnet(os.getpid() % 200 + 90)
    desktop("network", "create", "--subnet", subnet, "-o", f"com.docker.network.bridge.name=dlpod{os.getpid() % 1000}",
            NETWORK)
    try:
        yield subnet.rsplit(".", 1)[0]
    finally:
        desktop("network", "rm", NETWORK, check=False)


def test_notebook_role_reaches_the_engine_role_through_the_shared_socket(
        desktop: Docker, pod_net: str, values: dict) -> None:
    pod = learner_pod(values)
    containers = {c.name: c for c in [*pod.spec.init_containers, *pod.spec.containers]}
    engine, notebook = containers["engine"], containers["notebook"]
    pod_ip, mirror_ip = f"{pod_net}.{POD_IP_OFFSET}", f"{pod_net}.{POD_IP_OFFSET + 1}"
    mirror_cfg = next(d for d in yaml.safe_load_all((DEPLOY / "course-mirror.yaml").read_text())
                      if d and d["kind"] == "ConfigMap")["data"]["config.yml"]
    mirror_host = next(a for a in engine.args if a.startswith("--registry-mirror=")).split("=", 1)[1].split(":")[0]
    top = Path(tempfile.mkdtemp(prefix="dlpod-", dir="/var/tmp"))
    os.chmod(top, 0o755)
    names = ["dlpod-notebook", "dlpod-engine", "dlpod-mirror"]
    try:
        # the course mirror (course-mirror.yaml's Deployment and ConfigMap)
        (top / "mirror-config").mkdir()
        (top / "mirror-config" / "config.yml").write_text(mirror_cfg)
        os.chmod(top / "mirror-config", 0o755)
        os.chmod(top / "mirror-config" / "config.yml", 0o644)
        desktop("run", "-d", "--name", "dlpod-mirror", "--network", NETWORK, "--ip", mirror_ip,
                "--user", "65532:65532", "--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
                "-v", f"{top / 'mirror-config'}:/etc/docker/registry:ro", "--entrypoint", "/usr/bin/docker-registry",
                IMAGE, "serve", "/etc/docker/registry/config.yml")
        # the engine role: the pod's network namespace is its (the notebook joins it); JupyterLab's port
        # is published here, as a Service would reach the pod
        port = proc.free_port(18908)
        args = [a.replace("$(POD_IP)", pod_ip) for a in engine.args]
        desktop("run", "-d", "--name", "dlpod-engine", "--network", NETWORK, "--ip", pod_ip,
                "--add-host", f"{mirror_host}:{mirror_ip}", "-p", f"127.0.0.1:{port}:8888",
                *security_flags(pod, engine), *env_flags(engine, pod_ip), *mount_flags(pod, engine, top, ""),
                IMAGE, *args)
        probe = engine.startup_probe._exec.command  # the client names the field "_exec"
        deadline = time.monotonic() + 180
        while desktop("exec", "dlpod-engine", *probe, check=False).returncode != 0:
            running = desktop("inspect", "-f", "{{.State.Running}}", "dlpod-engine").stdout.strip()
            if running != "true" or time.monotonic() > deadline:
                logs = desktop("logs", "dlpod-engine", check=False)
                raise AssertionError("the engine role did not answer its startup probe:\n"
                                     + (logs.stdout + logs.stderr)[-4000:])
            time.sleep(2)
        # the notebook role, in the engine's network namespace (the pod's), as KubeSpawner makes it
        desktop("run", "-d", "--name", "dlpod-notebook", "--network", "container:dlpod-engine",
                *security_flags(pod, notebook), *env_flags(notebook, pod_ip),
                *mount_flags(pod, notebook, top, "dlpod-home"), IMAGE, *notebook.args)
        token, _ = wait_for_url(desktop, "dlpod-notebook")
        server = JupyterServer(port, token)
        deadline = time.monotonic() + 30
        while server.status() != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        kernel = server.start_kernel(NOTEBOOK)
        outs = server.execute(kernel, [
            "import os; print(os.environ['DOCKER_HOST'], os.getuid(), os.getgid())",
            "!docker version --format '{{{{.Server.Version}}}} {{{{.Client.Version}}}}'",
            "!docker pull -q busybox:1.35 >/dev/null && docker run --rm busybox:1.35 sh -c 'echo inside $(id -u)'",
        ])
        assert outs[0].split() == ["unix:///dockerlab/sock/docker.sock", "1000", "100"], outs[0]
        server_version, client_version = outs[1].split()
        assert server_version.startswith("28.") and client_version == server_version, outs[1]
        assert outs[2].strip() == "inside 0", outs[2]
        # the pod's facts, as the outer engine ran them
        for name in ("dlpod-engine", "dlpod-notebook"):
            host = desktop("inspect", "-f", "{{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}}", name).stdout
            assert host.split()[0] == "false" and host.split()[1] != "host", (name, host)
        drop, add, user = desktop("inspect", "-f", "{{json .HostConfig.CapDrop}} {{json .HostConfig.CapAdd}} "
                                  "{{.Config.User}}", "dlpod-engine").stdout.split()
        # as dockerd records them: a newer CLI sends CAP_SETGID, Debian 12's SETGID
        assert (json.loads(drop), sorted(c.removeprefix("CAP_") for c in json.loads(add)), user) == \
            (["ALL"], ["SETGID", "SETUID"], "1000:1000"), (drop, add, user)
        ps = desktop("exec", "dlpod-engine", "ps", "-eo", "uid,comm").stdout
        engine_procs = [line.split() for line in ps.splitlines()[1:]]
        assert any(comm == "dockerd" for _, comm in engine_procs), ps
        assert all(uid == "1000" for uid, comm in engine_procs if comm in ("dockerd", "rootlesskit", "containerd")), ps
        print(f"\nthe pod's engine: docker {server_version} (client {client_version}) through the shared socket")
    finally:
        for name in names:
            desktop("stop", "-t", "30", name, check=False, timeout=90)
            desktop("rm", "-f", "-v", name, check=False)
        desktop("volume", "rm", "dlpod-home", check=False)
        shutil.rmtree(top, ignore_errors=True)


# Each item of the engine's security context that the README says is needed, taken away in turn.
WITHOUT = {
    "SETUID": lambda f: _drop(f, "--cap-add=SETUID"),
    "SETGID": lambda f: _drop(f, "--cap-add=SETGID"),
    "seccomp-unconfined": lambda f: _drop(f, "--security-opt", "seccomp=unconfined"),
    "procMount-unmasked": lambda f: _drop(f, "--security-opt", "systempaths=unconfined"),
    "tun": lambda f: _drop(f, "--device", "/dev/net/tun"),
    "allowPrivilegeEscalation": lambda f: [*f, "--security-opt", "no-new-privileges"],
}


def _drop(flags: list[str], *item: str) -> list[str]:
    for i in range(len(flags)):
        if tuple(flags[i:i + len(item)]) == item:
            return flags[:i] + flags[i + len(item):]
    raise AssertionError(f"{item} is not in the pod's flags {flags}")


@pytest.mark.parametrize("missing", list(WITHOUT))
def test_the_engine_role_needs_each_item_of_its_security_context(desktop: Docker, values: dict, missing: str) -> None:
    pod = learner_pod(values)
    engine = next(c for c in pod.spec.init_containers if c.name == "engine")
    top = Path(tempfile.mkdtemp(prefix="dlpod-", dir="/var/tmp"))
    try:
        flags = WITHOUT[missing](security_flags(pod, engine))
        r = desktop("run", "--rm", *flags, *mount_flags(pod, engine, top, ""), IMAGE,
                    "engine", "--socket=/dockerlab/sock/docker.sock", "--data=/dockerlab/engine",
                    check=False, timeout=300)
        out = r.stdout + r.stderr
        assert r.returncode != 0 and "the engine did not start" in out and "Traceback" not in out, out[-3000:]
    finally:
        shutil.rmtree(top, ignore_errors=True)
