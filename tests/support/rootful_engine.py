"""A private Docker Engine (rootful dockerd) with its own data root, exec root, socket, pid file,
bridge and subnet. Used for the lab engine and for throwaway engines (tests, grading).

Never ``--bridge=none`` (it deletes the host's docker0) and never ``--iptables=true`` (it flushes
the DOCKER chains other engines rely on): published ports work through docker-proxy, and builds
that need the network use ``network_mode=host``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from labcore import proc

__all__ = ["Engine", "pick_subnet"]

DOCKERD = "/usr/sbin/dockerd"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def pick_subnet(seed: int, taken_by_us: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """A /24 in 10.213.0.0/16 that no interface or route on this host uses."""
    used = []
    out = _ip("-j", "addr").stdout + _ip("-j", "route").stdout
    for word in out.replace('"', " ").replace(",", " ").split():
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for i in range(256):
        net = ipaddress.ip_network(f"10.213.{(seed + i) % 256}.0/24")
        if str(net) in taken_by_us or not any(net.overlaps(u) for u in used if u.version == 4):
            return str(net)
    raise proc.LabFailure("No free /24 left in 10.213.0.0/16 for the lab's bridge: remove unused bridges.")


@dataclass
class Engine:
    name: str
    data_root: Path
    run: Path  # short path: sockets, pid file, exec root
    logs: Path
    bridge: str
    subnet: str
    mirror: str | None = None  # host:port of a registry mirror
    owner: str | None = None  # user who may use the socket
    extra_args: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.run / f"{self.name}.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.run / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.logs / f"engine-{self.name}.log"

    @property
    def config(self) -> Path:
        return self.data_root.parent / f"daemon-{self.name}.json"

    def daemon_json(self) -> dict[str, object]:
        cfg: dict[str, object] = {
            "storage-driver": "overlay2",
            "ip": "127.0.0.1",  # published ports stay on loopback unless a learner says otherwise
            "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "2"},
        }
        if self.mirror:
            cfg["registry-mirrors"] = [f"http://{self.mirror}"]
        return cfg

    def pid(self) -> int | None:
        return proc.running_pid(self.pidfile, f"--pidfile {self.pidfile}")

    def ready(self) -> bool:
        import docker  # slow import: only when needed

        try:
            client = docker.DockerClient(base_url=self.host, timeout=3)
            ok = bool(client.ping())
            client.close()
            return ok
        except Exception:
            return False

    def _ensure_bridge(self) -> None:
        gateway = str(next(iter(ipaddress.ip_network(self.subnet).hosts())))
        prefix = ipaddress.ip_network(self.subnet).prefixlen
        if _ip("link", "show", self.bridge, check=False).returncode != 0:
            _ip("link", "add", self.bridge, "type", "bridge")
        addrs = _ip("-br", "addr", "show", self.bridge).stdout
        if f"{gateway}/{prefix}" not in addrs:
            _ip("addr", "flush", "dev", self.bridge)
            _ip("addr", "add", f"{gateway}/{prefix}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

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
        if not Path(DOCKERD).exists():
            raise proc.LabFailure("dockerd is not installed: run ./lab up as root to install docker.io.")
        for d in (self.data_root, self.run):
            d.mkdir(parents=True, exist_ok=True)
        self.config.write_text(cfg)
        # A socket or pid file left by a crashed run would make dockerd refuse to start.
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        self._ensure_bridge()
        running_with.write_text("\n".join(argv))
        pid = proc.start(argv, self.run / f"{self.name}.launcher.pid", self.log)
        try:
            proc.wait_for(lambda: self.socket.exists() and self.ready(), 60,
                          f"The Docker Engine '{self.name}'", self.log, pid=pid)
        except proc.LabFailure:
            self.stop()
            raise
        self._grant_socket()
        return True

    def argv(self) -> list[str]:
        return [
            DOCKERD, "--config-file", str(self.config), "--data-root", str(self.data_root),
            "--exec-root", str(self.run / f"{self.name}-exec"), "--pidfile", str(self.pidfile),
            "-H", self.host, "--bridge", self.bridge, "--fixed-cidr", self.subnet,
            "--iptables=false", "--ip-masq=false", "--ip-forward=false",  # the host's ip_forward stays as it was
            "--group", "root", *self.extra_args,
        ]

    def _grant_socket(self) -> None:
        """Socket readable by the lab's user only (root's group, mode 0660, owner = that user)."""
        os.chmod(self.socket, 0o660)
        if self.owner and self.owner != "root":
            try:
                uid = pwd.getpwnam(self.owner).pw_uid
                os.chown(self.socket, uid, 0)
            except KeyError:
                pass

    def stop(self) -> bool:
        was = proc.stop(self.pidfile, f"--pidfile {self.pidfile}", timeout=30)
        (self.run / f"{self.name}.launcher.pid").unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        return was

    def remove_bridge(self) -> None:
        if _ip("link", "show", self.bridge, check=False).returncode == 0:
            _ip("link", "del", self.bridge, check=False)

    def destroy(self) -> None:
        """Stop, remove the bridge and every byte of data (throwaway engines only)."""
        self.stop()
        self.remove_bridge()
        # overlay mounts may linger after a crash; unmount before deleting
        proc.unmount_below(self.data_root)
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.run / f"{self.name}-exec", ignore_errors=True)
