"""Three Docker Engines side by side, each a ratio against references measured in the same run.

    sudo .venv/bin/python bench/bench_engines.py [--runs 5] [--pulls 3]

1. rootless 28.5: ``labengine.rootless.RootlessEngine`` (RootlessKit + slirp4netns, containerd store),
   the binaries ``./lab up`` fetched into the lab account's cache, the host's runc;
2. rootful 28.5: the same binaries run by root, containerd store, its own bridge and
   ``--iptables=false`` as ``tests.support.rootful_engine.Engine`` does (never ``--bridge=none``, never
   ``--iptables=true``): the reference for what rootless costs;
3. rootful 20.10: the host's Debian 12 ``/usr/sbin/dockerd`` (overlay2), as ``tests.support.rootful_engine.Engine``
   runs it: the previous round's reference.

Per engine: start-up until the API answers; ``docker run --rm busybox true`` (median of ``--runs``,
after a warm-up); ``docker pull`` of nginx and of busybox from a registry mirror (median of
``--pulls``; before each pull every image is removed and pruned, and the mirror's log says how many
bytes each pull really downloaded; the first engine's untimed warm-up pulls fill the mirror's
cache); PSS of the engine's process tree (``/proc/<pid>/smaps_rollup``) while idle, once after
start-up and once after the runs and pulls (the rootless tree: RootlessKit, slirp4netns, dockerd,
containerd; the bench's registry forwarder is reported apart). Each engine is driven by its own
CLI (28.5's ``docker`` for 28.5, ``/usr/bin/docker`` for 20.10), as a learner's would be. About
3 minutes with the defaults on 2 cores, most of it nginx pulls.

Who runs what: the bench runs as **root** (two of the engines are rootful) and refuses any other
account. It runs the rootless part as the lab's account (``dockerlab``, or ``LAB_USER``) by
re-running itself with ``runuser`` (``--rootless-part``, not for direct use) in a session of its
own: a rootless engine never runs as root. Ctrl-C (or SIGTERM) reaches the bench, which asks that
part to clean up as the account and waits for it; root removes only what a crashed part left.

Everything is the bench's own and is gone afterwards, even after Ctrl-C or an error: a registry
pair on free loopback ports (a read-only copy of ``.lab/registry/upstream`` and a pull-through mirror
in front of it), the engines (one at a time, in this order: rootful 28.5, rootless 28.5, rootful
20.10), their bridges, data roots and run directories. The rootless engine's data holds files owned
by the account's subordinate uids: the account deletes them (``labcore.proc.remove_tree``). The lab's
own engines and registries, and ``/var/run/docker.sock``, are never used. The rootless engine gets
no cgroup of its own (as the tests' throwaway engines). A system containerd at
``/run/containerd/containerd.sock`` would be taken over by a rootful dockerd: the bench refuses then.

Results are printed and written to ``bench/results/engines-<date>.json``. The machine may be busy
with other work: the ratios, measured in one run, are what counts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import pwd
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labcore import proc, safefs  # noqa: E402
from labengine import enginepkgs  # noqa: E402
from tests.support.rootful_engine import Engine, pick_subnet  # noqa: E402
from labengine.registry import Registry  # noqa: E402
from labengine.rootless import RootlessEngine  # noqa: E402

ACCOUNT = os.environ.get("LAB_USER", "dockerlab")
HOST_DOCKER = "/usr/bin/docker"  # Debian 12's CLI, 20.10
SYSTEM_CONTAINERD = Path("/run/containerd/containerd.sock")
PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
IMAGES = ("nginx", "busybox")
SETTLE_S = 2.5  # idle time before reading PSS
LABELS = {"rootless-28.5": "rootless 28.5", "rootful-28.5": "rootful 28.5", "rootful-20.10": "rootful 20.10"}


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- signals: Ctrl-C / SIGTERM interrupt a measurement, never a clean-up ---------------------------
def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Clean-up runs to its end; an interrupt that arrives meanwhile is raised afterwards."""
    hit: list[int] = []
    old = {s: signal.signal(s, lambda n, f: hit.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if hit:
        raise KeyboardInterrupt


# -- engine binaries -------------------------------------------------------------------------------
def recorded_binaries(cache: Path) -> enginepkgs.EngineBinaries:
    """The pinned 28.5 tree ``./lab up`` fetched (never fetched here)."""
    try:
        found = enginepkgs.EngineBinaries(**json.loads((cache / "current.json").read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise proc.LabFailure(f"No engine packages in {cache} ({e}): run ./lab up once first.") from e
    missing = [rel for rel in enginepkgs.NEEDED if not Path(found.path(rel)).exists()]
    if missing or found.packages != dict(enginepkgs.load_pins()["pins"]):  # type: ignore[call-overload]
        raise proc.LabFailure(f"The engine packages in {cache} are not the pinned ones: run ./lab up once first.")
    return found


@dataclass
class Rootful28(Engine):
    """labctl's rootful Engine on the 28.5 binaries with the containerd image store."""

    binaries: enginepkgs.EngineBinaries | None = None
    insecure: tuple[str, ...] = ()

    def daemon_json(self) -> dict[str, object]:
        cfg = super().daemon_json()
        cfg.pop("storage-driver", None)
        cfg["features"] = {"containerd-snapshotter": True}
        cfg["insecure-registries"] = list(self.insecure)  # the containerd store tries HTTPS on 127.0.0.1 too
        return cfg

    def argv(self) -> list[str]:
        assert self.binaries is not None
        argv = super().argv()
        argv[0] = self.binaries.dockerd
        # dockerd finds containerd, the shim, docker-init/-proxy on PATH; runc is the host's.
        path = ":".join([*self.binaries.search_path(), *PATH])
        return ["/usr/bin/env", f"PATH={path}", *argv]


# -- measuring -------------------------------------------------------------------------------------
class Cli:
    def __init__(self, docker: str, host: str, config: Path) -> None:
        config.mkdir(parents=True, exist_ok=True)
        self.docker = docker
        self.env = {"PATH": ":".join(PATH), "HOME": os.environ.get("HOME", "/"), "DOCKER_HOST": host,
                    "DOCKER_CONFIG": str(config), "DOCKER_CLI_HINTS": "false", "LANG": "C.UTF-8"}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([self.docker, *args], capture_output=True, text=True, env=self.env, timeout=300)
        if check and r.returncode != 0:
            raise proc.LabFailure(f"docker {' '.join(args)} failed (exit {r.returncode}): "
                                  f"{(r.stderr or r.stdout).strip()[-300:]}")
        return r

    def timed(self, *args: str) -> float:
        t0 = time.perf_counter()
        self(*args)
        return time.perf_counter() - t0

    def empty(self) -> None:
        """No container, no image: the next pull downloads every layer (the containerd store keeps
        blobs an image still shares, so one image's rmi is not enough)."""
        for c in set(self("ps", "-aq").stdout.split()):
            self("rm", "-f", c, check=False)
        ids = sorted(set(self("image", "ls", "-aq", "--no-trunc").stdout.split()))
        if ids:
            self("image", "rm", "-f", *ids, check=False)
        self("image", "prune", "-af")


def children() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, for every process."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(top: int) -> list[int]:
    """``top`` and every process below it."""
    kids = children()
    out, todo = [], [top]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def pss(pids: list[int]) -> tuple[float, dict[str, float]]:
    """Total PSS in MiB and MiB per command name."""
    per: dict[str, float] = {}
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        kb = next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
        per[comm] = round(per.get(comm, 0.0) + kb / 1024, 1)
    return round(sum(per.values()), 1), per


BLOB = re.compile(r'http\.request\.method=GET .*?http\.request\.uri="/v2/([^"]+?)/blobs/sha256:[^"]*".*?'
                  r'http\.response\.written=(\d+)')


class MirrorLog:
    """Bytes of blobs the mirror served, from its log (an fd: the rootless part gets it inherited)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def offset(self) -> int:
        return os.fstat(self.fd).st_size

    def blob_bytes(self, start: int, end: int, repo: str) -> int:
        text = os.pread(self.fd, max(0, end - start), start).decode(errors="replace")
        return sum(int(m[2]) for m in BLOB.finditer(text) if m[1] == repo)


def measure(cli: Cli, top_pid: Callable[[], int | None], mirror: MirrorLog, runs: int, pulls: int,
            fill_mirror: bool) -> dict[str, object]:
    res: dict[str, object] = {}
    info = json.loads(cli("info", "--format", "{{json .}}").stdout)
    res["server_version"] = info.get("ServerVersion")
    res["driver"] = info.get("Driver")
    res["driver_status"] = info.get("DriverStatus")
    res["rootless"] = any("rootless" in s for s in info.get("SecurityOptions") or [])
    res["cgroup"] = f"{info.get('CgroupDriver')} v{info.get('CgroupVersion')}"
    res["runc"] = (info.get("RuncCommit") or {}).get("ID")
    res["containerd"] = (info.get("ContainerdCommit") or {}).get("ID")

    def idle_pss() -> dict[str, object]:
        time.sleep(SETTLE_S)
        top = top_pid()
        if top is None:
            raise proc.LabFailure("the engine's top process is gone")
        total, per = pss(tree(top))
        return {"mib": total, "by_command": per}

    res["pss_after_start"] = idle_pss()
    for img in IMAGES if fill_mirror else ("busybox",):  # the first engine fills the mirror's cache (untimed)
        cli("pull", img)
    cli("run", "--rm", "busybox", "true")  # warm-up
    res["run_rm_s"] = [round(cli.timed("run", "--rm", "busybox", "true"), 4) for _ in range(runs)]
    marks: list[tuple[str, int]] = []
    pull_s: dict[str, list[float]] = {img: [] for img in IMAGES}
    for _ in range(pulls):
        for img in IMAGES:
            cli.empty()
            marks.append((img, mirror.offset()))
            pull_s[img].append(round(cli.timed("pull", img), 4))
    time.sleep(0.5)  # the mirror logs a response when it is done
    ends = [off for _, off in marks[1:]] + [mirror.offset()]
    pulled: dict[str, list[int]] = {img: [] for img in IMAGES}
    for (img, start), end in zip(marks, ends):
        pulled[img].append(mirror.blob_bytes(start, end, f"library/{img}"))
    res["pull_s"] = pull_s
    res["pull_downloaded_bytes"] = pulled
    res["pss_after_work"] = idle_pss()
    return res


# -- the rootless part, as the lab's account -------------------------------------------------------
def rootless_part(spec: dict[str, object]) -> int:
    if os.geteuid() == 0:
        print("--rootless-part never runs as root.", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    base, run = Path(str(spec["base"])), Path(str(spec["run"]))
    mirror, upstream = str(spec["mirror"]), str(spec["upstream"])
    binaries = recorded_binaries(enginepkgs.cache_dir())
    safefs.private_dir(run)
    eng = RootlessEngine(name="rl", data_root=base / "data", run=run, logs=base / "logs", binaries=binaries,
                         mirror=mirror, insecure=(mirror, upstream))
    res: dict[str, object] = {"binaries": binaries.version}
    try:
        t0 = time.perf_counter()
        eng.start()
        res["start_s"] = round(time.perf_counter() - t0, 3)
        eng.forward([int(upstream.rpartition(":")[2]), int(mirror.rpartition(":")[2])])
        say(f"rootless 28.5 up in {res['start_s']:.1f} s (pid {eng.pid()})")
        cli = Cli(binaries.docker, eng.host, base / "docker-config")
        res.update(measure(cli, eng.pid, MirrorLog(int(spec["log_fd"])),  # type: ignore[call-overload]
                           int(spec["runs"]), int(spec["pulls"]), fill_mirror=False))  # type: ignore[call-overload]
        fwd = proc.running_pid(eng.forward_pidfile, "labcore.netns")
        res["forwarder_pss_mib"] = pss([fwd])[0] if fwd else None
    finally:
        with shielded():
            eng.destroy()  # stops the tree; proc.remove_tree deletes subuid-owned files as this account
            proc.remove_tree(base)
            shutil.rmtree(run, ignore_errors=True)
    print(json.dumps(res))
    return 0


class RootlessChild:
    """The rootless part, run as the account by ``runuser``; its directories are named by the parent."""

    def __init__(self, tag: str, mirror: Registry, upstream: Registry, log_fd: int, args: argparse.Namespace) -> None:
        self.pw = pwd.getpwnam(ACCOUNT)
        self.base = Path(f"/var/tmp/dlbench-{tag}-rl")
        self.run = Path(f"/tmp/dlb-{tag}-rl")
        self.spec = {"base": str(self.base), "run": str(self.run), "mirror": mirror.addr, "upstream": upstream.addr,
                     "log_fd": log_fd, "runs": args.runs, "pulls": args.pulls}
        self.log_fd = log_fd
        self.child: subprocess.Popen[str] | None = None

    def measure(self) -> dict[str, object]:
        self.base.mkdir(mode=0o700)
        os.chown(self.base, self.pw.pw_uid, self.pw.pw_gid)
        env = [f"HOME={self.pw.pw_dir}", f"USER={ACCOUNT}", f"LOGNAME={ACCOUNT}", f"PATH={':'.join(PATH)}",
               "LANG=C.UTF-8"]
        argv = ["runuser", "-u", ACCOUNT, "--", "env", "-i", *env, sys.executable, str(Path(__file__).resolve()),
                "--rootless-part", json.dumps(self.spec)]
        # Its own session: Ctrl-C reaches only the parent, which asks the account's process to clean up
        # (runuser, on a signal of its own, would SIGKILL it 2 s later, in the middle of its clean-up).
        self.child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd="/", pass_fds=(self.log_fd,),
                                      start_new_session=True)
        out, _ = self.child.communicate()
        if self.child.returncode != 0 or not out.strip():
            raise proc.LabFailure(f"the rootless part failed (exit {self.child.returncode}); see above")
        return dict(json.loads(out.strip().splitlines()[-1]))

    def cleanup(self) -> None:
        """Wait for the account's own clean-up; if it could not finish, root removes what is left."""
        if self.child and self.child.poll() is None:
            for pid in children().get(self.child.pid, []):  # the part itself (runuser's child), not runuser
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                self.child.wait(timeout=180)
            except subprocess.TimeoutExpired:
                self.child.kill()
        leftovers = [pid for pid in self._account_pids() if str(self.run) in _cmdline(pid)]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if leftovers:
            say(f"the rootless part left {len(leftovers)} processes; killed them")
        for d in (self.base, self.run):
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)

    def _account_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and entry.stat().st_uid == self.pw.pw_uid:
                    pids.append(int(entry.name))
        return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# -- the rootful parts and the whole run -----------------------------------------------------------
def rootful(engine: Engine, docker: str, base: Path, mirror: MirrorLog, args: argparse.Namespace,
            label: str) -> dict[str, object]:
    res: dict[str, object] = {}
    try:
        t0 = time.perf_counter()
        engine.start()
        res["start_s"] = round(time.perf_counter() - t0, 3)
        say(f"{label} up in {res['start_s']:.1f} s (pid {engine.pid()})")
        cli = Cli(docker, engine.host, base / f"docker-config-{engine.name}")
        res.update(measure(cli, engine.pid, mirror, args.runs, args.pulls, fill_mirror=engine.name == "r28"))
    finally:
        with shielded():
            engine.destroy()  # stops it, deletes its bridge, unmounts and deletes its data
    return res


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(results: dict[str, dict[str, object]], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Print each figure with its ratios against rootful 28.5 and 20.10; return the ratios."""
    ok = {k: v for k, v in results.items() if "error" not in v}
    figures: dict[str, Callable[[dict[str, object]], float]] = {
        "start_s": lambda r: float(r["start_s"]),  # type: ignore[arg-type]
        "run_rm_s": lambda r: statistics.median(r["run_rm_s"]),  # type: ignore[arg-type]
        **{f"pull_{img}_s": (lambda r, i=img: statistics.median(r["pull_s"][i]))  # type: ignore[index]
           for img in IMAGES},
        "pss_after_start_mib": lambda r: float(r["pss_after_start"]["mib"]),  # type: ignore[index]
        "pss_after_work_mib": lambda r: float(r["pss_after_work"]["mib"]),  # type: ignore[index]
    }
    titles = {
        "start_s": "start-up until the API answers",
        "run_rm_s": f"docker run --rm busybox true, median of {args.runs}",
        "pss_after_start_mib": "idle PSS of the engine's process tree, after start-up",
        "pss_after_work_mib": "idle PSS of the engine's process tree, after the runs and pulls",
    }
    for img in IMAGES:
        mb = [b / 1e6 for r in ok.values() for b in r["pull_downloaded_bytes"][img]]  # type: ignore[index]
        got = f"{min(mb):.1f}-{max(mb):.1f} MB downloaded per pull" if mb else "?"
        titles[f"pull_{img}_s"] = f"docker pull {img} from the mirror, fresh, median of {args.pulls} ({got})"
    ratios: dict[str, dict[str, float]] = {}
    print(f"\n{os.cpu_count()} cores, load {args.load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          "(other work may share the machine: the ratios, from one run, are what counts)")
    for name, r in results.items():
        if "error" in r:
            print(f"{LABELS[name]}: FAILED: {r['error']}")
        else:
            print(f"{LABELS[name]}: {r['server_version']}, {r['driver']}"
                  f"{' (containerd store)' if 'snapshotter' in json.dumps(r['driver_status']) else ''}"
                  f"{', rootless' if r['rootless'] else ''}, cgroup {r['cgroup']}")
    for key, get in figures.items():
        vals = {k: get(v) for k, v in ok.items()}
        unit = " MiB" if key.startswith("pss") else " s"
        fmt = (lambda x: f"{x:.0f}{unit}") if unit == " MiB" else (lambda x: f"{x:.2f}{unit}")
        print(f"{titles[key]}:")
        ratios[key] = {}
        for who in ("rootless-28.5", "rootful-28.5"):
            if who not in vals:
                continue
            parts = [f"{LABELS[who]} {fmt(vals[who])}"]
            for ref in ("rootful-28.5", "rootful-20.10"):
                if ref != who and ref in vals:
                    parts.append(f"{LABELS[ref]} {fmt(vals[ref])} ({ratio(vals[who], vals[ref])})")
                    ratios[key][f"{who}/{ref}"] = round(vals[who] / vals[ref], 3) if vals[ref] else float("nan")
            print("  " + " vs ".join(parts))
        if key == "pss_after_work_mib" and "rootless-28.5" in ok and ok["rootless-28.5"].get("forwarder_pss_mib"):
            print(f"  (the rootless engine's registry forwarder, not counted: "
                  f"{ok['rootless-28.5']['forwarder_pss_mib']:.0f} MiB)")
    return ratios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="docker run --rm repetitions per engine (default 5)")
    ap.add_argument("--pulls", type=int, default=3, help="fresh pulls of each image per engine (default 3)")
    ap.add_argument("--upstream-from", type=Path, default=REPO / ".lab" / "registry" / "upstream",
                    help="registry storage with the course images (copied, never used in place)")
    ap.add_argument("--rootless-part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rootless_part:
        return rootless_part(json.loads(args.rootless_part))
    if os.geteuid() != 0:
        print("This bench needs root (two of its engines are rootful; it runs the rootless one as "
              f"'{ACCOUNT}' itself): run it with sudo.", file=sys.stderr)
        return 2
    if not args.upstream_from.is_dir():
        print(f"{args.upstream_from} does not exist: run ./lab up once (it builds the course images), "
              "then run the bench again.", file=sys.stderr)
        return 1
    if SYSTEM_CONTAINERD.exists():
        print(f"A system containerd is running ({SYSTEM_CONTAINERD}): a rootful dockerd would use it instead "
              "of its own; stop it, then run the bench again.", file=sys.stderr)
        return 1
    try:
        pwd.getpwnam(ACCOUNT)
        binaries = recorded_binaries(Path(pwd.getpwnam(ACCOUNT).pw_dir) / ".cache" / "dockerlab" / "engine")
    except (KeyError, proc.LabFailure) as e:
        print(f"The lab's account '{ACCOUNT}' or its engine packages are missing ({e}): run "
              "'sudo ./lab up --no-jupyter' once.", file=sys.stderr)
        return 1

    signal.signal(signal.SIGTERM, _interrupt)
    tag = secrets.token_hex(3)
    base = Path(f"/var/tmp/dlbench-{tag}")
    run = Path(f"/run/dlb-{tag}")
    regs: list[Registry] = []
    child: RootlessChild | None = None
    log_fd = -1
    results: dict[str, dict[str, object]] = {}
    started = datetime.datetime.now()
    load_before = args.load = os.getloadavg()
    t_all = time.perf_counter()
    try:
        safefs.private_dir(base)
        safefs.private_dir(run)
        say(f"copying {args.upstream_from} ...")
        shutil.copytree(args.upstream_from, base / "registry" / "upstream", symlinks=True)
        up_port = proc.free_port(5300, span=500)
        mirror_port = proc.free_port(up_port + 1, avoid={up_port}, span=500)
        upstream = Registry(f"bench-up-{tag}", up_port, base / "registry" / "upstream", run, base / "logs",
                            readonly=True)
        regs.append(upstream)
        upstream.start()
        mirror = Registry(f"bench-mirror-{tag}", mirror_port, base / "registry" / "mirror", run, base / "logs",
                          remote=f"http://{upstream.addr}")
        regs.append(mirror)
        mirror.start()
        say(f"registries: upstream {upstream.addr} (read-only copy), mirror {mirror.addr}")
        log_fd = os.open(mirror.log, os.O_RDONLY)
        os.set_inheritable(log_fd, True)
        mlog = MirrorLog(log_fd)

        parts: list[tuple[str, Callable[[], dict[str, object]]]] = [
            ("rootful-28.5", lambda: rootful(
                Rootful28(name="r28", data_root=base / "r28" / "data", run=run, logs=base / "logs",
                          bridge=f"dlb-{tag}-a", subnet=pick_subnet(int(tag[:2], 16)), mirror=mirror.addr,
                          binaries=binaries, insecure=(mirror.addr, upstream.addr)),
                binaries.docker, base, mlog, args, "rootful 28.5")),
            ("rootless-28.5", lambda: child.measure()),  # type: ignore[union-attr]
            ("rootful-20.10", lambda: rootful(
                Engine(name="r20", data_root=base / "r20" / "data", run=run, logs=base / "logs",
                       bridge=f"dlb-{tag}-b", subnet=pick_subnet(int(tag[2:4], 16)), mirror=mirror.addr),
                HOST_DOCKER, base, mlog, args, "rootful 20.10")),
        ]
        child = RootlessChild(tag, mirror, upstream, log_fd, args)
        for name, part in parts:
            say(f"{LABELS[name]} ...")
            t_part = time.perf_counter()
            try:
                results[name] = part()
                results[name]["wall_s"] = round(time.perf_counter() - t_part, 1)
            except (proc.LabFailure, OSError, ValueError, subprocess.SubprocessError) as e:
                say(f"{LABELS[name]} failed: {e}")
                results[name] = {"error": str(e)}
            finally:
                if name == "rootless-28.5":
                    with shielded():
                        child.cleanup()
    finally:
        with shielded():
            if child:
                child.cleanup()
            for reg in regs:
                reg.stop()
            if log_fd >= 0:
                os.close(log_fd)
            proc.unmount_below(base)
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(run, ignore_errors=True)
            say("everything the bench started is stopped and deleted")

    ratios = report(results, args)
    out = REPO / "bench" / "results" / f"engines-{started:%Y-%m-%d}.json"
    out.parent.mkdir(exist_ok=True)
    doc = {
        "date": started.isoformat(timespec="seconds"),
        "host": {"cores": os.cpu_count(), "kernel": platform.release(),
                 "load_before": [round(x, 2) for x in load_before],
                 "load_after": [round(x, 2) for x in os.getloadavg()]},
        "runs": args.runs, "pulls": args.pulls, "settle_s": SETTLE_S,
        "bench_s": round(time.perf_counter() - t_all, 1),
        "engines": results,
        "ratios": ratios,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwritten to {out.relative_to(REPO)} ({doc['bench_s']:.0f} s in all)")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\n[bench] interrupted (everything it started was removed)", file=sys.stderr)
        raise SystemExit(130)
    except proc.LabFailure as e:
        print(f"[bench] {e}", file=sys.stderr)
        raise SystemExit(1)
