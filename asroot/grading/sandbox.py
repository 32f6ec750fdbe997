"""A throwaway place to grade one submission, with nothing of root in it.

Per submission, on one account of the grading pool (``asroot.gradeaccounts``, e.g. ``dlgrade1``):

* a **cgroup** ``dockerlab-grade-<account>`` with limits on pids, memory (swap included where the
  host accounts swap), CPU and disk I/O (where / is on a disk); everything the account runs for the submission
  (engine, kernel, nbgrader, containers) is inside it; containers one level deeper (``ctr``) with
  tighter limits where the engine can use them. cgroup v1 and v2 (:class:`SandboxCgroup`);
* a **size-limited tmpfs** as the account's home (engine data, the notebook's copy, logs);
* a **network namespace** of its own, made by root: only loopback, on which root's relay serves the
  course's read-only mirror (``relay``) and an unprivileged registry takes lab 4's pushes. The
  rootless engine (RootlessKit + slirp4netns, run by the account) sits inside it, so its
  ``10.0.2.2`` reaches only those two; published ports and ``--net=host`` stay in the sandbox;
* an **IPC namespace** of its own (System V shared memory and queues go with the sandbox);
* a **mount namespace** of its own: the course directory, the submissions, the project's sources,
  tests and history are covered by empty read-only tmpfs, and so is ``/var/lib/dockerlab-grade`` but
  for this sandbox's home and the engine's programs (no other sandbox's socket or files); ``/tmp``, ``/var/tmp``
  and ``/dev/shm`` are the sandbox's own;
* a **wall-clock limit** (the grader kills the cgroup, the account's processes and its helpers).

Root's part is only making and removing these, and the helpers that never run the learner's code
(relay, check service). :meth:`Sandbox.sweep` removes what a crashed run left.
"""

from __future__ import annotations

import os
import pwd
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from asroot import cgroups as rootcg
from labengine import cgroups
from asroot.gradeaccounts import BASE, kill_account
from labcore import proc, safefs
from labcore.state import REPO

__all__ = ["CGROUP_ROOT", "CONTROL", "Limits", "Sandbox", "SandboxCgroup", "enter_argv"]

CGROUP_ROOT = cgroups.ROOT
CONTROL = Path("/run/dockerlab-grade")  # root 0700: the grader's own files per account (pids, verdicts)
V1 = ("pids", "memory", "cpu", "freezer", "blkio")
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    pids: int = 1024  # engine + containerd + kernel + nbgrader + containers
    container_pids: int = 200
    memory_mb: int = 1536  # includes the tmpfs disk's pages; swap is not allowed on top
    container_memory_mb: int = 768
    cpus: float = 1.0
    disk_mb: int = 1024
    io_mbps: int = 200  # read and write, on the disk under / (v2 io.max, v1 blkio throttle; the tmpfs is memory)


class SandboxCgroup:
    """``dockerlab-grade-<account>`` on cgroup v1 (one directory per controller) or v2 (one tree).

    v1: root sets the limits; only the ``ctr`` directories are the account's (so its engine's runc
    can make per-container cgroups below them); every knob stays root's.
    v2: like a systemd delegation: the subtree is the account's (``cgroup.procs``, ``subtree_control``,
    ``threads``), its limits (``memory.max``, ``memory.swap.max``, ``pids.max``, ``cpu.max``, ``io.max``)
    root's; processes live in the leaf ``work`` (no internal processes), containers under ``ctr``.
    """

    def __init__(self, name: str, root: Path = CGROUP_ROOT) -> None:
        self.name, self.root = name, root
        self.kind = cgroups.hierarchy(root)

    def tops(self) -> list[Path]:
        if self.kind == "v2":
            return [self.root / self.name]
        return [self.root / c / self.name for c in V1 if (self.root / c).is_dir()]

    def _w(self, path: Path, value: object) -> bool:
        try:
            cgroups.write(path, value)
            return True
        except OSError:
            return False

    def create(self, limits: Limits, uid: int, gid: int) -> None:
        if self.kind == "v1":
            # A cgroup directory takes the creator's umask: under autograde's 077 the tops were 0700 and
            # root's, so the account's runc could not reach its own ctr below them (every container
            # stayed "created": "unable to get cgroup freezer state ... permission denied").
            old = os.umask(0o022)
            try:
                for top in self.tops():
                    (top / "ctr").mkdir(parents=True, exist_ok=True)
            finally:
                os.umask(old)
            rootcg.hand_over([top / "ctr" for top in self.tops()], uid, gid, ("",))  # the directory only
            base = self.root
            self._w(base / "pids" / self.name / "pids.max", limits.pids)
            self._w(base / "pids" / self.name / "ctr" / "pids.max", limits.container_pids)
            mem = base / "memory" / self.name
            self._w(mem / "memory.limit_in_bytes", limits.memory_mb << 20)
            self._w(mem / "memory.memsw.limit_in_bytes", limits.memory_mb << 20)  # where swap is accounted
            self._w(mem / "ctr" / "memory.limit_in_bytes", limits.container_memory_mb << 20)
            self._w(mem / "ctr" / "memory.memsw.limit_in_bytes", limits.container_memory_mb << 20)
            self._w(mem / "memory.swappiness", 0)
            period = 100_000
            self._w(base / "cpu" / self.name / "cpu.cfs_period_us", period)
            self._w(base / "cpu" / self.name / "cpu.cfs_quota_us", int(period * limits.cpus))
            dev = _root_device()
            if dev:  # where the host has a blkio hierarchy and / is on a disk (not an overlay)
                bps = limits.io_mbps << 20
                self._w(base / "blkio" / self.name / "blkio.throttle.read_bps_device", f"{dev} {bps}")
                self._w(base / "blkio" / self.name / "blkio.throttle.write_bps_device", f"{dev} {bps}")
            return
        if self.kind != "v2":
            raise RuntimeError("no cgroup file system at /sys/fs/cgroup: grading needs one to limit submissions")
        top = self.root / self.name
        have = cgroups.read(self.root / "cgroup.controllers").split()
        wanted = [c for c in ("memory", "pids", "cpu", "io") if c in have]
        self._w(self.root / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        top.mkdir(exist_ok=True)
        self._w(top / "memory.max", limits.memory_mb << 20)
        self._w(top / "memory.swap.max", 0)
        self._w(top / "pids.max", limits.pids)
        self._w(top / "cpu.max", f"{int(100_000 * limits.cpus)} 100000")
        dev = _root_device()
        if dev and "io" in wanted:
            bps = limits.io_mbps << 20
            self._w(top / "io.max", f"{dev} rbps={bps} wbps={bps}")
        for leaf in ("work", "ctr"):
            (top / leaf).mkdir(exist_ok=True)
        self._w(top / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        self._w(top / "ctr" / "pids.max", limits.container_pids)
        self._w(top / "ctr" / "memory.max", limits.container_memory_mb << 20)
        self._w(top / "ctr" / "memory.swap.max", 0)
        rootcg.hand_over([top, top / "work", top / "ctr"], uid, gid, cgroups.DELEGATED_V2)

    def procs_files(self) -> list[Path]:
        """Where a process is put to be inside the sandbox."""
        if self.kind == "v2":
            return [self.root / self.name / "work" / "cgroup.procs"]
        return [t / "cgroup.procs" for t in self.tops()]

    def container_parent(self) -> str:
        return f"/{self.name}/ctr"

    def pids(self) -> set[int]:
        return cgroups.pids_below(self.tops())

    def peak_memory(self) -> int:
        for f in (self.root / "memory" / self.name / "memory.max_usage_in_bytes",
                  self.root / self.name / "memory.peak"):
            try:
                return int(safefs.read_kernel(f))
            except (OSError, ValueError):
                continue
        return 0

    def limit_hits(self) -> dict[str, int]:
        """How often the limits stopped something: forks refused, memory limit reached."""
        hits = {"pids": 0, "memory": 0}
        for top in self.tops():
            if not top.exists():
                continue
            for f in top.rglob("pids.events"):
                hits["pids"] += _event(f, "max")
            if self.kind == "v1":
                for f in top.rglob("memory.failcnt"):
                    try:
                        hits["memory"] += int(safefs.read_kernel(f).split()[0])
                    except (OSError, ValueError, IndexError):
                        pass
            else:
                for f in top.rglob("memory.events"):
                    hits["memory"] += _event(f, "max")
        return hits

    def kill_all(self, timeout: float = 10.0) -> None:
        """Freeze, SIGKILL, thaw until nothing is left (a fork bomb cannot outrun it)."""
        kill = self.root / self.name / "cgroup.kill"
        if self.kind == "v2" and kill.exists():
            self._w(kill, 1)
        freezer = self.root / "freezer" / self.name / "freezer.state"
        frozen = self.root / self.name / "cgroup.freeze"
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            self._w(freezer, "FROZEN") if self.kind == "v1" else self._w(frozen, 1)
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self._w(freezer, "THAWED") if self.kind == "v1" else self._w(frozen, 0)
            time.sleep(0.1)

    def remove(self) -> None:
        for top in self.tops():
            cgroups.rmdir_tree(top)


def _event(f: Path, key: str) -> int:
    try:
        words = safefs.read_kernel(f).split()
        return int(words[words.index(key) + 1])
    except (OSError, ValueError, IndexError):
        return 0


def _root_device(path: str = "/") -> str:
    """``major:minor`` of the whole disk ``path`` is on (throttling takes disks, not partitions); ""
    when it is on no block device (an overlay, a tmpfs)."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    block = Path("/sys/dev/block") / dev
    if not block.exists():
        return ""
    if (block / "partition").exists():
        try:
            return safefs.read_kernel(block.resolve().parent / "dev").strip()
        except OSError:
            return ""
    return dev


def enter_argv(holder: int, procs: list[Path], uid: int, gid: int, argv: list[str], *,
               locked: bool = False) -> list[str]:
    """``argv`` run inside the sandbox: in its cgroup, its mount, network and IPC namespaces (System V
    shared memory dies with the holder, not outliving the sandbox in the host's), as the account.

    ``locked`` also sets no_new_privs and drops every capability from the bounding set (for the kernel
    and nbgrader: no setuid program can give them anything)."""
    join = 'p=$$; IFS=:; for f in $0; do echo $p > "$f" || exit 97; done; unset IFS; exec "$@"'
    priv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all"]
    if locked:
        priv += ["--no-new-privs", "--bounding-set=-all"]
    return ["sh", "-c", join, ":".join(map(str, procs)),
            "nsenter", f"--mount=/proc/{holder}/ns/mnt", f"--net=/proc/{holder}/ns/net",
            f"--ipc=/proc/{holder}/ns/ipc", "--",
            *priv, "--", *argv]


@dataclass
class Sandbox:
    """One grading account's sandbox. Made by the grader (root), entered by :func:`enter_argv`."""

    account: str
    limits: Limits = field(default_factory=Limits)
    hide: tuple[str, ...] = ()  # instructor paths to cover in the sandbox's mount namespace

    @property
    def pw(self) -> pwd.struct_passwd:
        return pwd.getpwnam(self.account)

    @property
    def home(self) -> Path:
        return BASE / self.account  # the tmpfs

    @property
    def user(self) -> Path:
        return self.home / "u"  # the account's HOME inside the tmpfs

    @property
    def control(self) -> Path:
        return CONTROL / self.account

    @property
    def logs(self) -> Path:
        """Root's helpers' and the worker's logs: root's files in the sandbox's tmpfs (``ctl``), so a
        flood of them fills the submission's own disk limit, never /run."""
        return self.home / "ctl"

    @property
    def cgroup(self) -> SandboxCgroup:
        return SandboxCgroup(f"dockerlab-grade-{self.account}")

    def holder_pid(self) -> int | None:
        return _live_pid(self.control / "holder.pid", "dockerlab-grade-holder")

    def enter(self, argv: list[str], locked: bool = False) -> list[str]:
        holder = self.holder_pid()
        if holder is None:
            raise RuntimeError("the sandbox's namespaces are gone")
        return enter_argv(holder, self.cgroup.procs_files(), self.pw.pw_uid, self.pw.pw_gid, argv,
                          locked=locked)

    def enter_root_net(self, argv: list[str]) -> list[str]:
        """Root's helpers: in the sandbox's network namespace only (files as on the host)."""
        return ["nsenter", f"--net=/proc/{self.holder_pid()}/ns/net", "--", *argv]

    # -- lifecycle -----------------------------------------------------------------------------
    def create(self, timeout: float = 60.0) -> None:
        """tmpfs home, cgroup, and the namespaces (held by a root ``sleep``), within ``timeout`` seconds
        for the namespaces' holder to say it is ready."""
        pw = self.pw
        self.sweep()
        CONTROL.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(CONTROL, 0o700)
        self.control.mkdir(mode=0o700, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        # root's 0711 top: the account cannot rename root's ctl/ (the check service's socket) or the
        # registry's storage; its own files are all under u/ (its HOME)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.limits.disk_mb}m,mode=0711,nosuid,nodev",
                        f"dockerlab-grade-{self.account}", str(self.home)], check=True, capture_output=True,
                       timeout=60)
        for sub in ("u", "u/tmp", "u/shm", "u/run", "u/logs", "u/course", "u/lab"):
            d = self.home / sub
            d.mkdir(mode=0o700)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        ctl = self.home / "ctl"  # root's; only this account (its group) may look in: the socket, job.json
        ctl.mkdir(mode=0o750)
        os.chown(ctl, 0, pw.pw_gid)
        os.chmod(ctl, 0o750)
        (self.home / "registry").mkdir(mode=0o700)
        os.chown(self.home / "registry", NOBODY, NOBODY)
        self.cgroup.create(self.limits, pw.pw_uid, pw.pw_gid)
        hidden: list[str] = []
        for h in sorted({os.path.realpath(h) for h in self.hide}, key=len):
            under_base = h == str(BASE) or h.startswith(f"{BASE}/")  # covered with the whole of it below
            if os.path.isdir(h) and not under_base and not any(h == x or h.startswith(x.rstrip("/") + "/")
                                                               for x in hidden):
                hidden.append(h)
        # the project and its venv stay where they are even in /tmp (a clone in /tmp/x): mounted into the
        # sandbox's own /tmp first, with the covers above carried along (rbind)
        keep = []
        kept: list[str] = []
        for k in sorted({os.path.realpath(REPO), os.path.realpath(sys.prefix)}, key=len):
            if k.startswith("/tmp/") and not any(k.startswith(x + "/") for x in kept):
                kept.append(k)
                inner = f"{self.user}/tmp/{k.removeprefix('/tmp/')}"
                keep += [f"mkdir -p '{inner}'", f"mount --rbind '{k}' '{inner}'"]
        # the grading accounts' top: only this sandbox's home and the engine's programs are left in it
        # (not the other sandboxes', nor root's course); carried over a root-only staging directory
        stage = self.control / "stage"
        keep_base = [d for d in (self.home, BASE / "engine") if d.is_dir()]
        cover = [f"mkdir -p '{stage}/{i}' && mount --rbind '{d}' '{stage}/{i}'" for i, d in enumerate(keep_base)]
        cover.append(f"mount -t tmpfs -o size=64k,mode=0755 dockerlab-hidden '{BASE}'")
        cover += [f"mkdir -p '{d}' && mount --move '{stage}/{i}' '{d}'" for i, d in enumerate(keep_base)]
        cover.append(f"mount -o remount,ro '{BASE}'")
        script = "\n".join([
            "set -e", "ip link set lo up", *cover,
            *(f"mount -t tmpfs -o ro,size=4k,mode=0555 dockerlab-hidden '{h}'" for h in hidden),
            *keep,
            f"mount --rbind '{self.user}/tmp' /tmp", f"mount --bind '{self.user}/tmp' /var/tmp",
            f"mount --bind '{self.user}/shm' /dev/shm",
            "echo ready", "exec -a dockerlab-grade-holder sleep infinity"])
        with safefs.open_private(self.control / "holder.log", "wb") as log:
            p = subprocess.Popen(["unshare", "--mount", "--net", "--ipc", "--propagation", "private", "--", "bash",
                                  "-c", script],
                                 stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        assert p.stdout is not None
        with p.stdout:
            line = _first_line(p.stdout.fileno(), timeout)
        if line.strip() != b"ready":
            proc.end_session(p, timeout=10)
            raise RuntimeError("the sandbox's namespaces could not be made: "
                               + safefs.read_private(self.control / "holder.log", 4096).decode(errors="replace")[-300:])
        safefs.write_private(self.control / "holder.pid", str(p.pid))
        deadline = time.monotonic() + 10  # "ready" comes just before bash execs the holder
        while self.holder_pid() is None:
            if time.monotonic() > deadline or p.poll() is not None:
                raise RuntimeError("the sandbox's namespaces could not be made: their holder did not start")
            time.sleep(0.01)

    def helper(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start one of root's helpers (relay, check service, registry); its pid file is root's."""
        with safefs.open_private(self.logs / f"{name}.log", "ab") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                 env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO), **(env or {})},
                                 cwd="/")
        safefs.write_private(self.control / f"{name}.pid", str(p.pid))
        return p.pid

    def stop(self) -> None:
        """Kill everything of the sandbox: the cgroup, the account's processes, root's helpers."""
        self.cgroup.kill_all()
        uid = _uid(self.account)
        if uid >= 0:
            kill_account(uid)
        for pidfile in sorted(self.control.glob("*.pid")) if self.control.exists() else []:
            try:
                pid = int(safefs.read_private(pidfile, 64))
                if Path(f"/proc/{pid}").exists() and os.stat(f"/proc/{pid}").st_uid in (0, NOBODY):
                    os.killpg(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
            pidfile.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Remove whatever this account's sandbox left (an earlier run that crashed, or this one)."""
        self.stop()
        prefix = str(self.home) + "/"
        points = [line.split()[1] for line in safefs.read_kernel("/proc/mounts", 16 << 20).splitlines() if line]
        for point in sorted((p for p in points if p.startswith(prefix) or p == str(self.home)), reverse=True):
            _bounded(["umount", "-l", point])
        if self.home.exists():  # not a mount any more: wipe what is there
            _bounded(["rm", "-rf", "--one-file-system", str(self.home)], timeout=300)
            self.home.mkdir(mode=0o700)
            uid = _uid(self.account)
            if uid >= 0:
                os.chown(self.home, uid, self.pw.pw_gid)
        self.cgroup.remove()
        for entry in self.control.glob("*") if self.control.exists() else []:
            safefs.remove_tree(entry)


def _bounded(argv: list[str], timeout: float = 60) -> None:
    """A system tool of the clean-up, given ``timeout`` seconds (one stuck in the kernel does not hold the batch)."""
    try:
        subprocess.run(argv, check=False, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _first_line(fd: int, timeout: float, limit: int = 4096) -> bytes:
    """The first line a child writes to the pipe ``fd``, or what came before ``timeout`` or its end."""
    deadline, buf = time.monotonic() + timeout, b""
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    while b"\n" not in buf and len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0 or not poll.poll(left * 1000):
            break
        chunk = os.read(fd, limit)
        if not chunk:
            break
        buf += chunk
    return buf.partition(b"\n")[0]


def _uid(user: str) -> int:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return -1


def _live_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process's argv[0] is ``marker`` (the holder's ``exec -a``)."""
    try:
        pid = int(safefs.read_private(pidfile, 64))
        if safefs.read_kernel(f"/proc/{pid}/cmdline").split("\0")[0] == marker:
            return pid
    except (OSError, ValueError):
        pass
    return None
