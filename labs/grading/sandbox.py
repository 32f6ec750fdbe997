"""A throwaway place to grade one submission: a cgroup with limits, a size-limited disk, a
private Docker Engine (seeded from the lab's mirror) and a private registry.

Everything the grader starts for a submission runs inside the cgroup ``dockerlab-grade-<id>``
(pids, memory, cpu, freezer; cgroup v1, no systemd): the worker process joins it first, so the
engine, its containerd, the registry, nbgrader and the kernel all inherit it. Containers go one
level deeper (``--cgroup-parent=/dockerlab-grade-<id>/ctr``) with tighter limits, so a fork bomb
in a container stops at ``container_pids`` while the engine can still answer.

The engine's data root is a tmpfs of ``disk_mb``: a submission that fills "the disk" fills that.
Published ports bind to a loopback address of its own (``127.213.<n>.1``), so two submissions can
publish the same port at once.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labctl import proc
from labctl.cgroups import rmdir_retrying as _rmdir
from labctl.engine import Engine, pick_subnet
from labctl.registry import Registry

__all__ = ["CGROUP_ROOT", "Cgroup", "GradingEngine", "Limits", "Sandbox"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory", "cpu", "freezer")
_ALLOC = threading.Lock()  # subnets and ports handed out to sandboxes of this process
_TAKEN_SUBNETS: set[str] = set()
_TAKEN_PORTS: set[int] = set()


@dataclass(frozen=True)
class Limits:
    pids: int = 1024  # engine + containerd + kernel + nbgrader + containers
    container_pids: int = 200
    memory_mb: int = 1536  # includes the tmpfs disk's pages
    container_memory_mb: int = 512
    cpus: float = 1.0
    disk_mb: int = 1024


class Cgroup:
    """``/sys/fs/cgroup/<controller>/<name>`` in every controller of :data:`CONTROLLERS`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def path(self, controller: str, sub: str = "") -> Path:
        return CGROUP_ROOT / controller / self.name / sub

    def create(self, limits: Limits) -> None:
        for c in CONTROLLERS:
            self.path(c, "ctr").mkdir(parents=True, exist_ok=True)
        self._write("pids", "", "pids.max", limits.pids)
        self._write("pids", "ctr", "pids.max", limits.container_pids)
        self._write("memory", "", "memory.limit_in_bytes", limits.memory_mb << 20)
        self._write("memory", "ctr", "memory.limit_in_bytes", limits.container_memory_mb << 20)
        period = 100_000
        self._write("cpu", "", "cpu.cfs_period_us", period)
        self._write("cpu", "", "cpu.cfs_quota_us", int(period * limits.cpus))

    def _write(self, controller: str, sub: str, knob: str, value: int | str) -> None:
        (self.path(controller, sub) / knob).write_text(str(value))

    def join(self, pid: int) -> None:
        for c in CONTROLLERS:
            (self.path(c) / "cgroup.procs").write_text(str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        base = self.path("pids")
        for procs in base.rglob("cgroup.procs") if base.exists() else []:
            found.update(int(x) for x in procs.read_text().split())
        return found

    def peak_memory(self) -> int:
        try:
            return int((self.path("memory") / "memory.max_usage_in_bytes").read_text())
        except OSError:
            return 0

    def limit_hits(self) -> dict[str, int]:
        """How often the limits stopped something: forks refused, memory limit reached.

        Counted per cgroup where it happened (a container's own cgroup for a fork bomb), so ask
        while the containers still exist."""
        hits = {"pids": 0, "memory": 0}
        for knob, key in (("pids.events", "pids"), ("memory.failcnt", "memory")):
            base = self.path(key)
            for f in base.rglob(knob) if base.exists() else []:
                try:
                    words = f.read_text().split()
                    hits[key] += int(words[words.index("max") + 1] if key == "pids" else words[0])
                except (OSError, ValueError, IndexError):
                    pass
        return hits

    def kill_all(self, timeout: float = 10.0) -> None:
        """Freeze, SIGKILL and thaw until no process of ours is left (a fork bomb cannot outrun it)."""
        state = self.path("freezer") / "freezer.state"
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            if state.exists():
                state.write_text("FROZEN")
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if state.exists():
                state.write_text("THAWED")
            time.sleep(0.1)

    def remove(self) -> None:
        """rmdir bottom-up in every hierarchy (docker adds its own per-container directories)."""
        for hierarchy in CGROUP_ROOT.iterdir():
            top = hierarchy / self.name
            if not top.is_dir():
                continue
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir(d)
            _rmdir(top)


@dataclass
class GradingEngine(Engine):
    """An :class:`Engine` whose published ports bind to an address of its own."""

    listen_ip: str = "127.0.0.1"

    def daemon_json(self) -> dict[str, object]:
        cfg = super().daemon_json()
        cfg["ip"] = self.listen_ip
        return cfg


@dataclass
class Sandbox:
    """Everything one submission is graded in. Made by the grader, entered by the worker."""

    id: str
    scratch: Path  # tmpfs mount point (the engine's disk)
    logs: Path
    mirror: str
    subnet: str
    registry_port: int
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def allocate(cls, scratch_root: Path, logs: Path, mirror: str, limits: Limits) -> Sandbox:
        sid = secrets.token_hex(3)
        with _ALLOC:
            subnet = pick_subnet(int(sid[:2], 16), set())
            while subnet in _TAKEN_SUBNETS:
                subnet = pick_subnet(int(subnet.split(".")[2]) + 1, set())
            port = proc.free_port(5100, avoid=_TAKEN_PORTS, span=800)
            _TAKEN_SUBNETS.add(subnet)
            _TAKEN_PORTS.add(port)
        return cls(sid, scratch_root / sid, logs, mirror, subnet, port, limits)

    # -- names ---------------------------------------------------------------------------------
    @property
    def cgroup(self) -> Cgroup:
        return Cgroup(f"dockerlab-grade-{self.id}")

    @property
    def run(self) -> Path:
        return Path(f"/run/dockerlab-g{self.id}")

    @property
    def listen_ip(self) -> str:
        third = ipaddress.ip_network(self.subnet).network_address.packed[2]
        return f"127.213.{third}.1"

    def engine(self) -> GradingEngine:
        return GradingEngine(
            name="grade", data_root=self.scratch / "engine", run=self.run, logs=self.logs,
            bridge=f"dlg-{self.id}", subnet=self.subnet, mirror=self.mirror,
            extra_args=[f"--cgroup-parent=/{self.cgroup.name}/ctr"], listen_ip=self.listen_ip)

    def registry(self) -> Registry:
        return Registry(f"grade-{self.id}", self.registry_port, self.scratch / "registry",
                        self.run, self.logs)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.update(scratch=str(self.scratch), logs=str(self.logs), limits=asdict(self.limits))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Sandbox:
        d = dict(d)
        limits = Limits(**d.pop("limits"))  # type: ignore[arg-type]
        return cls(limits=limits, scratch=Path(str(d.pop("scratch"))), logs=Path(str(d.pop("logs"))),
                   **d)  # type: ignore[arg-type]

    # -- lifecycle -----------------------------------------------------------------------------
    def create(self) -> None:
        """Cgroup with limits and a tmpfs disk (the grader, as root, before the worker starts)."""
        self.cgroup.create(self.limits)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.limits.disk_mb}m,mode=0711",
                        f"dockerlab-grade-{self.id}", str(self.scratch)], check=True)

    def teardown(self) -> tuple[int, dict[str, int]]:
        """Kill what is left, delete the engine, disk, bridge and cgroup.

        Returns the peak memory (bytes) and how often the limits were hit."""
        peak, hits = self.cgroup.peak_memory(), self.cgroup.limit_hits()
        engine, registry = self.engine(), self.registry()
        registry.stop()
        engine.stop()
        self.cgroup.kill_all()
        engine.destroy()
        # network namespaces and overlay mounts of killed containers live under run/scratch
        for root in (self.run, self.scratch):
            script = f"grep -o ' {root}/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"
            subprocess.run(["sh", "-c", script], check=False)
        subprocess.run(["umount", "-l", str(self.scratch)], check=False, capture_output=True)
        for d in (self.scratch, self.run):
            subprocess.run(["rm", "-rf", "--one-file-system", str(d)], check=False)
        self.cgroup.remove()
        with _ALLOC:
            _TAKEN_SUBNETS.discard(self.subnet)
            _TAKEN_PORTS.discard(self.registry_port)
        return peak, hits
