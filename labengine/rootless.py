"""The lab's engine: a rootless ``dockerd`` (RootlessKit + slirp4netns) run by the lab's own,
unprivileged account, with the containerd image store, as Docker 29 has it by default.

A container's root is the account's uid on the host, so ``docker run -v /:/host`` cannot write
what the account cannot. The engine has its own network namespace: its ``docker0`` and iptables
rules never touch the host's. Published ports are forwarded from the host's 127.0.0.1 by
RootlessKit's port driver. The host's loopback is reachable from inside as ``10.0.2.2``
(slirp4netns), which is how the engine reaches the course's read-only mirror.

Processes are tracked by pid file and exact command line (``proc``); the whole tree runs in the
lab's cgroup when the one-time root step delegated one (``cgroups``). On cgroup v2 under systemd, the
engine instead runs in a scope of the account's systemd user manager with the systemd cgroup driver,
the only way a rootless engine applies ``docker run -m`` and ``--pids-limit`` (moby uses the driver
"none" for a rootless engine otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labengine import cgroups
from labcore import proc
from labengine.enginepkgs import HOST_RUNC, EngineBinaries
from labcore.state import REPO

__all__ = ["HOST_LOOPBACK", "RootlessEngine", "running_pid"]

HOST_LOOPBACK = "10.0.2.2"  # slirp4netns: the host's 127.0.0.1, seen from the engine's namespace
# Run inside RootlessKit's namespaces, as dockerd-rootless.sh does: /run is a fresh copy there.
CHILD = 'rm -f /run/docker /run/containerd /run/xtables.lock; exec dockerd "$@"'


def _pidfile(run: Path, name: str) -> Path:
    return run / f"{name}.pid"  # RootlessKit's pid: the top of the engine's tree


def _state_dir(run: Path, name: str) -> Path:
    return run / f"{name}-rk"


def _marker(run: Path, name: str) -> str:
    return f"--state-dir={_state_dir(run, name)}"  # on RootlessKit's command line (argv)


def running_pid(run: Path, name: str = "lab") -> int | None:
    """The project's one "is the engine running": the pid of the rootless engine ``name`` whose run
    directory is ``run``, if its pid file names a live RootlessKit with that engine's state directory on
    its command line (another process that took the pid over is not it). Needs no configuration of the
    engine: the launcher's doctor and the classroom's progress page ask it without building one."""
    return proc.running_pid(_pidfile(run, name), _marker(run, name))


@dataclass
class RootlessEngine:
    name: str
    data_root: Path
    run: Path  # private (0700) and short: sockets, pid files, exec root
    logs: Path
    binaries: EngineBinaries
    mirror: str | None = None  # host:port of the course mirror on the host's loopback
    # host:port of the lab's plain-HTTP registries (the containerd store tries HTTPS on 127.0.0.1 too)
    insecure: tuple[str, ...] = ()
    cgroup: cgroups.Delegated | None = None
    extra_args: list[str] = field(default_factory=list)
    # The systemd cgroup driver through the account's user manager (cgroup v2 + systemd); None: use it
    # when this machine offers it (cgroups.rootless_driver).
    systemd: bool | None = None
    start_timeout: float = 60.0  # seconds until the engine answers (a VM under emulation needs more)

    def __post_init__(self) -> None:
        if self.systemd is None:
            self.systemd = os.getuid() != 0 and cgroups.rootless_driver() == "systemd"

    @property
    def scope(self) -> str:
        """The systemd scope the engine runs in (systemd driver only): one per lab home and engine."""
        return f"{self.run.name}-{self.name}.scope"

    @property
    def slice(self) -> str:
        """The containers' systemd slice (systemd driver only), so stopping the engine can stop them all
        (a "-" in a slice's name would nest it)."""
        return f"{self.run.name}-{self.name}".replace("-", "_") + ".slice"

    @property
    def socket(self) -> Path:
        return self.run / f"{self.name}.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def state_dir(self) -> Path:
        return _state_dir(self.run, self.name)

    @property
    def pidfile(self) -> Path:
        return _pidfile(self.run, self.name)

    @property
    def log(self) -> Path:
        return self.logs / f"engine-{self.name}.log"

    @property
    def config(self) -> Path:
        return self.data_root.parent / f"daemon-{self.name}.json"

    def _marker(self) -> str:
        return _marker(self.run, self.name)

    def daemon_json(self) -> dict[str, object]:
        cfg: dict[str, object] = {
            "features": {"containerd-snapshotter": True},
            "ip": "127.0.0.1",  # published ports stay on loopback unless a learner says otherwise
            "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "2"},
        }
        if self.mirror:  # the same address inside the engine, through labcore.netns
            cfg["registry-mirrors"] = [f"http://{self.mirror}"]
        if self.insecure:
            cfg["insecure-registries"] = list(self.insecure)
        if self.systemd:
            cfg["exec-opts"] = ["native.cgroupdriver=systemd"]
            cfg["cgroup-parent"] = self.slice
        return cfg

    def _systemd_run(self) -> list[str]:
        """``systemd-run --scope`` execs the engine in place (same pid) in a scope of the user manager,
        as Docker's rootless systemd unit runs it (Delegate=yes)."""
        if not self.systemd:
            return []
        return ["systemd-run", "--user", "--scope", "--quiet", "--collect", f"--unit={self.scope}",
                "--description=Docker Lab rootless engine", "-p", "Delegate=yes", "--"]

    def argv(self) -> list[str]:
        return [
            *self._systemd_run(),
            self.binaries.path("usr/bin/rootlesskit") if self.binaries.root != "/" else "rootlesskit",
            self._marker(), "--net=slirp4netns", "--mtu=65520", "--slirp4netns-sandbox=auto",
            "--slirp4netns-seccomp=auto", "--port-driver=builtin", "--copy-up=/etc", "--copy-up=/run",
            "--propagation=rslave",
            "sh", "-c", CHILD, "dockerd",
            "--config-file", str(self.config), "--data-root", str(self.data_root),
            "--exec-root", str(self.run / f"{self.name}-exec"), "--pidfile", str(self.run / f"{self.name}-dockerd.pid"),
            "-H", self.host, *self.extra_args,
        ]

    def env(self) -> dict[str, str]:
        bindir = self.run / "bin"
        bindir.mkdir(exist_ok=True)
        runc = bindir / "runc"
        if not runc.is_symlink():
            runc.symlink_to(shutil.which("runc", path=self.binaries.path("usr/sbin")) or HOST_RUNC)
        path = [str(bindir), *self.binaries.search_path(), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                "/usr/bin", "/sbin", "/bin"]
        env = {"PATH": ":".join(path), "XDG_RUNTIME_DIR": str(self.run), "HOME": os.path.expanduser("~")}
        bus = cgroups.user_bus() if self.systemd else None
        if bus:  # runc's rootless systemd manager (and systemd-run) talk to the user manager over it
            env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
        return env

    def pid(self) -> int | None:
        return running_pid(self.run, self.name)

    def ready(self) -> bool:
        """The engine answers ``GET /_ping`` (plain HTTP on its socket: no docker-py, whose import alone
        is ~7 MiB in a classroom server that stays up all day)."""
        from labcore.distribution import RegistryError, request

        try:
            return request(self.host, "/_ping", timeout=3)[0] == b"OK"
        except RegistryError:
            return False

    def start(self) -> bool:
        """Start unless already running with this configuration. True if started now."""
        argv = self.argv()
        cfg = json.dumps(self.daemon_json(), indent=2, sort_keys=True)
        running_with = self.run / f"{self.name}.argv"
        same = self.config.exists() and self.config.read_text() == cfg and running_with.exists() \
            and running_with.read_text() == "\n".join(argv)
        if self.pid() and same and self.ready():
            return False
        self.stop()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(cfg)
        self.socket.unlink(missing_ok=True)  # left by a crash, dockerd would refuse to start
        shutil.rmtree(self.state_dir, ignore_errors=True)
        running_with.write_text("\n".join(argv))
        if self.cgroup and not self.systemd:
            self.cgroup.create()
        join = self.cgroup.join_self if self.cgroup and not self.systemd else None
        pid = proc.start(argv, self.pidfile, self.log, env=self.env(), preexec=join)
        try:
            proc.wait_for(lambda: self.socket.exists() and self.ready(), self.start_timeout,
                          f"The rootless Docker Engine '{self.name}'", self.log, pid=pid)
        except proc.LabFailure as e:
            self.stop()
            raise proc.LabFailure(explain_start_failure(self.log) or str(e)) from e
        # dockerd gives the socket to its "docker" group, which inside the user namespace is one of the
        # account's subordinate gids: keep it to the account alone.
        os.chmod(self.socket, 0o600)
        return True

    # -- the registries' addresses inside the engine's namespace (see labcore.netns) -------------
    @property
    def forward_pidfile(self) -> Path:
        return self.run / f"{self.name}-forward.pid"

    def forward(self, ports: Sequence[int | str], timeout: float = 15) -> bool:
        """Make ``127.0.0.1:PORT`` inside the engine reach the host's ``127.0.0.1:PORT``, or for ``"PORT=/path"``
        the Unix socket at ``/path`` (a forwarder that stays in this namespace: :mod:`labcore.netns`). True if
        started now (a forwarder for other ports is stopped first)."""
        marker = f"labcore.netns {self.state_dir} {' '.join(map(str, ports))}"
        if proc.running_pid(self.forward_pidfile, marker):
            return False
        proc.stop(self.forward_pidfile, f"labcore.netns {self.state_dir}")
        argv = [sys.executable, "-m", "labcore.netns", str(self.state_dir), *map(str, ports)]
        log = self.logs / f"forward-{self.name}.log"
        start = log.stat().st_size if log.exists() else 0
        pid = proc.start(argv, self.forward_pidfile, log, env={"PYTHONPATH": str(REPO)})
        try:
            proc.wait_for(lambda: "forwarding" in log.read_text(errors="replace")[start:], timeout,
                          "The registry forwarder inside the engine", log, pid=pid)
        except BaseException:  # not half-started: a late forwarder must not bind what the caller gave up on
            proc.stop(self.forward_pidfile, f"labcore.netns {self.state_dir}")
            raise
        return True

    def stop(self) -> bool:
        proc.stop(self.forward_pidfile, f"labcore.netns {self.state_dir}")
        was = proc.stop(self.pidfile, self._marker(), timeout=40)
        # Shims of containers outlive a killed dockerd: they name our exec root on their command line.
        proc.kill_matching(str(self.run / f"{self.name}-exec"))
        if self.cgroup:  # whatever else the engine left (a container's `runc init`, a shim): its cgroup knows
            self.cgroup.kill_all()
            self.cgroup.remove()
        if self.systemd:  # the same, for the engine's scope (and the containers' scopes it asked for)
            self._stop_scope()
        self.socket.unlink(missing_ok=True)
        return was

    def _stop_scope(self) -> None:
        bus = cgroups.user_bus()
        if not bus:
            return
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus}", "XDG_RUNTIME_DIR": str(bus.parent)}
        subprocess.run(["systemctl", "--user", "stop", self.scope, self.slice], env=env, capture_output=True,
                       timeout=60, check=False)

    def destroy(self) -> None:
        """Stop and delete every byte of data (throwaway engines only)."""
        self.stop()
        proc.remove_tree(self.data_root)
        shutil.rmtree(self.run / f"{self.name}-exec", ignore_errors=True)
        self.config.unlink(missing_ok=True)


def explain_start_failure(log: Path) -> str:
    """One sentence for the usual reasons a rootless engine does not start, from its log."""
    try:
        text = log.read_text(errors="replace")[-6000:]
    except OSError:
        return ""
    user = os.environ.get("USER") or str(os.getuid())
    if "newuidmap" in text or "subuid" in text or "no subuid ranges" in text:
        return (f"The account {user} has no subordinate uid/gid range, which a rootless engine needs: "
                "run 'sudo ./lab setup' once (it adds one to /etc/subuid and /etc/subgid).")
    if "/dev/net/tun" in text:
        return ("slirp4netns cannot open /dev/net/tun: run 'sudo ./lab setup' once "
                "(it makes /dev/net/tun usable by ordinary accounts, mode 0666 as on stock Debian).")
    if "operation not permitted" in text.lower() and ("unshare" in text or "user namespace" in text):
        return ("This kernel does not let ordinary accounts create user namespaces "
                "(kernel.unprivileged_userns_clone=0 or AppArmor's apparmor_restrict_unprivileged_userns=1): "
                "run 'sudo ./lab setup' once, it says what to change.")
    if "no space left" in text.lower():
        return "The disk is full: free some space (df -h), then run ./lab up again."
    return ""
