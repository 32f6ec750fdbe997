"""`./lab doctor`: the checks of the book's 4.1.7 / 4.2.9, each with its fix."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass

from labcore.state import State

__all__ = ["Check", "checks", "run", "versions"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # False: the course works without it (KVM), so it does not fail doctor


def _info(state: State) -> dict[str, object] | None:
    import docker

    try:
        client = docker.DockerClient(base_url=state.docker_host, timeout=5)
        info: dict[str, object] = client.info()
        client.close()
        return info
    except Exception:
        return None


def checks(state: State) -> list[Check]:
    out: list[Check] = []
    info = _info(state) if state.docker_host else None
    out.append(Check("engine", info is not None,
                     f"Docker Engine {info.get('ServerVersion')} at {state.docker_host}" if info
                     else f"no engine answers at {state.docker_host or '(not set up)'}",
                     "run ./lab up (it starts the lab engine)"))
    if info:
        rootless = any("rootless" in str(o) for o in info.get("SecurityOptions") or [])  # type: ignore[union-attr,attr-defined]
        out.append(Check("rootless", rootless, "the engine runs as " + ("an ordinary account" if rootless else "root"),
                         "run ./lab up as an ordinary account (root's ./lab switches to 'dockerlab')"))
        status = dict((str(k), str(v)) for k, v in (info.get("DriverStatus") or []))  # type: ignore[union-attr,attr-defined]
        store = status.get("driver-type", "")
        out.append(Check("image store", store == "io.containerd.snapshotter.v1",
                         f"{info.get('Driver')} ({store or 'classic graph driver store'})",
                         "set \"features\": {\"containerd-snapshotter\": true} in daemon.json (Docker 29's default)"))
        out.append(_cgroup_check(info, rootless))
        warnings = [str(w) for w in (info.get("Warnings") or []) if "bridge-nf-call" not in str(w)  # type: ignore[attr-defined]
                    and "rootless-mode without cgroups" not in str(w)]
        out.append(Check("docker info warnings", not warnings, "; ".join(warnings) or "none",
                         "see the warning's text; most name a kernel parameter (book 4.2.9)"))
        mirrors = ((info.get("RegistryConfig") or {}).get("Mirrors") or [])  # type: ignore[union-attr,attr-defined]
        out.append(Check("registry mirror", f"http://{state.mirror}/" in mirrors, ", ".join(mirrors) or "none",
                         f"add \"registry-mirrors\": [\"http://{state.mirror}\"] to daemon.json"))
    sock = state.docker_host.removeprefix("unix://")
    if sock and os.path.exists(sock):
        mode = stat.S_IMODE(os.stat(sock).st_mode)
        out.append(Check("socket permissions", not mode & 0o077, f"{sock} mode {oct(mode)}",
                         "the socket is the engine: chmod 600 it (./lab up does)"))
    out.append(_kvm_check())
    dot = shutil.which("dot")
    out.append(Check("graphviz", dot is not None, dot or "dot not found", "apt-get install graphviz"))
    return out


def _engine_pid() -> int | None:
    """The lab engine's top process (RootlessKit), as ./lab up recorded it."""
    from labcore.state import paths
    from labengine.rootless import running_pid

    return running_pid(paths().run)


def _whole_engine() -> str:
    """What limits the engine as a whole, read from its cgroup (not from what ./lab meant to do)."""
    from labengine.cgroups import engine_limits

    pid = _engine_pid()
    if pid is None:
        return "the engine's own cgroup is unknown (its pid file is not this lab's)"
    where, memory = engine_limits(pid)
    if memory is None:
        return f"nothing limits the engine as a whole (cgroup {where or '?'})"
    return f"the whole engine is limited to {memory >> 20} MiB (cgroup {where})"


def _cgroup_check(info: dict[str, object], rootless: bool) -> Check:
    """The truth about limits, from the engine's own report and its cgroup."""
    from labengine.cgroups import systemd_running

    cg, driver = str(info.get("CgroupVersion", "1")), str(info.get("CgroupDriver") or "none")
    head = f"cgroup v{cg}, driver {driver}: "
    if driver != "none" and (cg == "2" or not rootless):
        return Check("cgroup", True, head + "per-container limits (docker run -m, --pids-limit, --cpus) work; "
                     + _whole_engine())
    if cg == "2" and systemd_running():  # fixable: the account's user manager is not reachable
        return Check("cgroup", False, head + "per-container limits are ignored: a rootless engine applies them "
                     "only through the systemd cgroup driver of the account's systemd user manager, which "
                     "this engine does not use; " + _whole_engine(),
                     "run 'sudo ./lab setup' (it starts the account's user manager; needs dbus-user-session), "
                     "then ./lab down and ./lab up", required=False)
    if cg == "2":
        return Check("cgroup", True, head + "per-container limits are ignored: a rootless engine applies them "
                     "only through systemd's cgroup driver, and this machine does not run systemd; "
                     + _whole_engine())
    return Check("cgroup", True, head + "per-container limits cannot work in a rootless engine on cgroup v1 "
                 "(docker run -m is ignored); " + _whole_engine() + ". Boot with cgroup v2 "
                 "(systemd.unified_cgroup_hierarchy=1) and systemd to have them")


def _kvm_check() -> Check:
    """/dev/kvm can exist and still hang (nested PVM): a short test boot decides (chapter 2's probe)."""
    fix = "enable virtualisation for this machine, or accept TCG (chapter 2 says what it changes)"
    if not (os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)):
        return Check("KVM", False, "no usable /dev/kvm: virtual machines run under TCG (slower)", fix, False)
    try:
        from kernel_ext.vmcompare import build_assets
        from kernel_ext.vmcompare.accel import probe_accel

        from labcore.state import paths

        cache = paths().home / "vm"
        probe = probe_accel(build_assets(cache, log=lambda _: None), cache)
    except Exception as e:  # no VM kernel yet, qemu missing: report what we know
        return Check("KVM", True, f"/dev/kvm present; no test boot possible ({str(e)[:80]})")
    if probe.accel == "kvm":
        return Check("KVM", True, "/dev/kvm works (a test boot reached its marker)")
    return Check("KVM", False, "/dev/kvm exists but a test boot hangs (e.g. nested PVM): VMs run under TCG",
                 fix, False)


def versions(state: State) -> str:
    parts = []
    info = _info(state) if state.docker_host else None
    if info:
        parts.append(f"engine {info.get('ServerVersion')} ({info.get('Driver')})")
    if state.engine_version:
        parts.append(f"docker.io {state.engine_version} from {state.engine_source}")
    r = subprocess.run(["/usr/bin/docker-registry", "--version"], capture_output=True, text=True) \
        if os.path.exists("/usr/bin/docker-registry") else None
    if r and r.returncode == 0:
        parts.append("registry " + r.stdout.split()[-1])
    return "versions: " + (", ".join(parts) or "unknown (nothing running)")


def run(state: State) -> int:
    bad = 0
    for c in checks(state):
        mark = "\u2714" if c.ok else ("\u2718" if c.required else "!")
        print(f"{mark} {c.name:22} {c.detail}")
        if not c.ok and c.fix:
            print(f"  {'':22} fix: {c.fix}")
            bad += c.required
    return 1 if bad else 0
