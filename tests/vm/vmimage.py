"""A Debian 12 VM that boots with cgroup v2 only and systemd as init (qemu, TCG), in which the lab's
one-time root step and its rootless engine run exactly as on an instructor's machine.

* **base disk** (cached by a hash of what goes into it, under ``~/.cache/dockerlab/vm-cgroup2``):
  ``mmdebstrap`` rootfs with systemd, dbus-user-session, uidmap, slirp4netns, iptables, runc, python3
  and Debian's cloud kernel, plus the lab's engine tree (the Debian unstable packages labctl unpacked)
  and a boot unit; made into ext4 by ``mke2fs -d`` (no mount). The VM writes to a throwaway overlay
  (``snapshot=on``), so the cached disk never changes.
* **project disk** (made on every run, seconds): the repository's files and the pure-Python packages
  labctl needs in the guest (docker-py and its dependencies), and a nonce.
* **boot**: the unit mounts the project disk, runs ``tests/vm/guest_check.py`` (which prints
  ``DLAB-VM <nonce> key=value`` lines on the serial console) and powers off; the host reads the console.

>>> run = run_check()            # doctest: +SKIP
>>> run.results["limited"]       # doctest: +SKIP
'67108864 50'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pwd
import queue
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from labengine import enginepkgs
from labcore.state import REPO

__all__ = ["MARK", "VMRun", "base_disk", "cache_dir", "engine_tree", "grading_disk", "project_disk", "run_check"]

MARK = "DLAB-VM"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "dbus-user-session", "libpam-systemd", "passwd", "uidmap",
            "slirp4netns", "iptables", "iproute2", "kmod", "procps", "python3", "runc", "busybox-static",
            "linux-image-cloud-amd64", "initramfs-tools")
# labctl imports only the standard library at module level; docker-py (and what it needs) it imports
# when it talks to an engine.
GUEST_DISTS = ("docker",)
CMDLINE = ("root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all "
           "quiet loglevel=3 systemd.show_status=false panic=-1")
ENGINE_IN_GUEST = "/opt/dockerlab-engine"
# The grading run (guest_check.grade_main): a third disk, cached like the base one, holding what
# ``./lab grade`` needs that the guest has not (a venv with nbgrader, docker-registry, lab 4's images).
GRADING_IN_GUEST = "/opt/dockerlab-grading"
GRADING_LAB = "lab4"  # the lab graded in the VM: no container to run, two small images
GRADING_REPOS = ("library/busybox", "library/hello-world")  # lab 4's images, from the course's registry
GRADING_SKIP = ("jupyterhub", "sudospawner", "jupyterhub-idle-culler")  # the classroom's, not grading's
GRADING_VERSION = "2"
BUILD_VERSION = "1"  # bump when the image's recipe changes in a way the hash below cannot see

BOOT_SCRIPT = f"""#!/bin/sh
# Docker Lab's cgroup v2 check: run the check from the project disk, print on the console, power off.
mkdir -p /mnt/project
if mount -o ro /dev/vdb /mnt/project; then
  nonce=$(cat /mnt/project/.vmcheck-nonce)
  echo "{MARK} $nonce booted uptime=$(cut -d' ' -f1 /proc/uptime)"
  PYTHONDONTWRITEBYTECODE=1 python3 /mnt/project/tests/vm/guest_check.py "$nonce" 2>&1
  echo "{MARK} $nonce done rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
else
  echo "{MARK} none error=the project disk /dev/vdb could not be mounted"
fi
systemctl poweroff --no-block
"""
UNIT = """[Unit]
Description=Docker Lab cgroup v2 check
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/dockerlab-vmcheck
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
"""
# Found by python3 in the guest: the project and the packages copied next to it.
PTH = "/mnt/project\n/mnt/project/.vmsite\n"
# Units that only cost boot time under emulation (and a login prompt that would share the console).
MASK = ("serial-getty@ttyS0.service", "getty@tty1.service", "apt-daily.timer", "apt-daily-upgrade.timer",
        "e2scrub_all.timer", "fstrim.timer", "systemd-timesyncd.service", "man-db.timer")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dockerlab" / "vm-cgroup2"


def _sh(cmd: list[str], timeout: float = 900, **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-600:]}")
    return r


def engine_tree(account: str | None = None, say: Callable[[str], None] = print) -> enginepkgs.EngineBinaries:
    """The engine the lab's account already fetched (``./lab up`` ran first), else fetch it here."""
    account = account or os.environ.get("LAB_ACCOUNT", "dockerlab")
    try:
        cache = Path(pwd.getpwnam(account).pw_dir) / ".cache" / "dockerlab" / "engine"
        found = enginepkgs.EngineBinaries(**json.loads((cache / "current.json").read_text()))
        if all(Path(found.path(rel)).exists() for rel in enginepkgs.NEEDED):
            return found
    except (KeyError, OSError, ValueError, TypeError):
        pass
    found = enginepkgs.ensure(say, cache_dir().parent / "engine")
    if found.root == "/":
        raise RuntimeError("no unpacked engine tree (only the host's docker.io): the VM needs the lab's engine")
    return found


def _key(engine: enginepkgs.EngineBinaries) -> str:
    recipe = {"packages": PACKAGES, "suite": SUITE, "mirror": MIRROR, "boot": BOOT_SCRIPT, "unit": UNIT,
              "pth": PTH, "mask": MASK, "engine": [engine.version, engine.packages], "v": BUILD_VERSION}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BaseDisk:
    image: Path
    kernel: Path
    initrd: Path
    key: str
    built_s: float | None  # None: found in the cache


def base_disk(engine: enginepkgs.EngineBinaries, cache: Path | None = None,
              say: Callable[[str], None] = print) -> BaseDisk:
    """The cached base disk for this recipe and engine, built first if missing (root: mmdebstrap)."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = _key(engine)
    disk = BaseDisk(cache / f"base-{key}.img", cache / f"vmlinuz-{key}", cache / f"initrd-{key}", key, None)
    if disk.image.is_file() and disk.kernel.is_file() and disk.initrd.is_file():
        return disk
    t0 = time.monotonic()
    work = cache / f"build-{key}"
    shutil.rmtree(work, ignore_errors=True)
    rootfs = work / "rootfs"
    work.mkdir(parents=True)
    say(f"building the cgroup v2 VM's disk (mmdebstrap {SUITE}, a few minutes, once)")
    _sh(["mmdebstrap", "--mode=root", "--variant=apt", "--format=directory", "--include=" + ",".join(PACKAGES),
         SUITE, str(rootfs), MIRROR])
    _customize(rootfs, engine)
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError("the VM's rootfs has no kernel")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    shutil.copyfile(kernels[-1], work / "vmlinuz")
    shutil.copyfile(rootfs / "boot" / f"initrd.img-{version}", work / "initrd")
    img = work / "base.img"
    _sh(["mke2fs", "-q", "-t", "ext4", "-L", "dlabvm", "-E", "root_owner=0:0", "-d", str(rootfs), str(img), "3G"])
    for old in cache.glob("base-*.img"):  # an earlier recipe's disk: several hundred MB each
        old.unlink()
    for old in [*cache.glob("vmlinuz-*"), *cache.glob("initrd-*")]:
        old.unlink()
    os.replace(work / "vmlinuz", disk.kernel)
    os.replace(work / "initrd", disk.initrd)
    os.replace(img, disk.image)  # last: its presence means the whole build is there
    shutil.rmtree(work, ignore_errors=True)
    return BaseDisk(disk.image, disk.kernel, disk.initrd, key, time.monotonic() - t0)


def _customize(rootfs: Path, engine: enginepkgs.EngineBinaries) -> None:
    (rootfs / "etc/hostname").write_text("dlabvm\n")
    sbin = rootfs / "usr/local/sbin/dockerlab-vmcheck"
    sbin.write_text(BOOT_SCRIPT)
    sbin.chmod(0o755)
    units = rootfs / "etc/systemd/system"
    (units / "dockerlab-vmcheck.service").write_text(UNIT)
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "dockerlab-vmcheck.service").symlink_to("/etc/systemd/system/dockerlab-vmcheck.service")
    for unit in MASK:
        (units / unit).unlink(missing_ok=True)
        (units / unit).symlink_to("/dev/null")
    site = rootfs / "usr/local/lib/python3.11/dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "dockerlab-vm.pth").write_text(PTH)
    # The engine tree as ./lab up unpacked it (documentation left out); the check moves it into the
    # lab account's cache once the one-time step has made the account.
    dest = rootfs / ENGINE_IN_GUEST.lstrip("/") / engine.version
    shutil.copytree(engine.root, dest, symlinks=True, ignore=lambda d, names: ["share"] if d.endswith("/usr") else [])
    meta = {"root": str(Path(ENGINE_IN_GUEST) / engine.version), "version": engine.version,
            "source": engine.source, "packages": engine.packages}
    (dest.parent / "current.json").write_text(json.dumps(meta, indent=1))


def _dist_files(name: str, seen: set[str]) -> set[Path]:
    """Top-level files and folders of a distribution and of everything it requires (no extras)."""
    key = name.lower().replace("_", "-")
    if key in seen:
        return set()
    seen.add(key)
    dist = importlib.metadata.distribution(name)
    tops: set[Path] = set()
    for f in dist.files or []:
        first = f.parts[0]
        if first.endswith((".dist-info", ".pth")) or first in ("..", "__pycache__") or first.endswith(".data"):
            continue
        tops.add(Path(str(dist.locate_file(first))))
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):  # this platform's, no extras
            tops |= _dist_files(req.name, seen)
    return tops


def _grading_dists() -> list[importlib.metadata.Distribution]:
    """The project's own requirements and everything they require (the dev tools and the classroom's
    hub left out): what nbgrader, the kernel and labctl import while grading."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    walked: set[tuple[str, str]] = set()

    def walk(name: str, extras: set[str]) -> None:
        key = name.lower().replace("_", "-")
        dist = seen.setdefault(key, importlib.metadata.distribution(name))
        for extra in {"", *extras}:  # nbconvert asks for bleach[css]: tinycss2 comes with that extra
            if (key, extra) in walked:
                continue
            walked.add((key, extra))
            for text in dist.requires or []:
                req = Requirement(text)
                if req.marker is None and not extra or req.marker is not None and req.marker.evaluate({"extra": extra}):
                    walk(req.name, set(req.extras))

    for text in importlib.metadata.distribution("dockerlab").requires or []:
        req = Requirement(text)
        if req.name.lower() not in GRADING_SKIP and (req.marker is None or req.marker.evaluate({"extra": ""})):
            walk(req.name, set(req.extras))
    return [seen[k] for k in sorted(seen)]


def _course_registry() -> Path:
    """The course's upstream registry storage (the tests' lab home, else the learner's)."""
    from labcore.state import paths

    homes = [paths().home, Path(os.environ.get("LAB_MAIN_HOME") or paths().home)]
    for home in homes:
        store = home / "registry" / "upstream" / "docker" / "registry" / "v2"
        if all((store / "repositories" / r).is_dir() for r in GRADING_REPOS):
            return store
    raise RuntimeError("no course registry with lab 4's images (busybox, hello-world): run ./lab up first")


def _repo_blobs(store: Path, repo: str) -> set[str]:
    top = store / "repositories" / repo
    return {d.name for sub in ("_layers/sha256", "_manifests/revisions/sha256") for d in (top / sub).iterdir()}


def grading_disk(cache: Path | None = None, say: Callable[[str], None] = print) -> tuple[Path, float | None]:
    """The cached grading disk (venv, docker-registry, lab 4's images), built first if missing.

    Returns the image and its build time (None: found in the cache). The venv's files are the host's
    own (Debian 12's python3.11, like the guest's); scripts' ``#!`` lines point at the guest's path."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    dists = _grading_dists()
    store = _course_registry()
    blobs = sorted(set().union(*(_repo_blobs(store, r) for r in GRADING_REPOS)))
    registry = Path("/usr/bin/docker-registry")
    recipe = {"dists": [(d.metadata["Name"], d.version) for d in dists], "blobs": blobs, "v": GRADING_VERSION,
              "registry": registry.stat().st_size, "in_guest": GRADING_IN_GUEST}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    img = cache / f"grading-{key}.img"
    if img.is_file():
        return img, None
    say("building the cgroup v2 VM's grading disk (venv, registry, lab 4's images; once)")
    t0 = time.monotonic()
    work = cache / f"build-grading-{key}"
    shutil.rmtree(work, ignore_errors=True)
    venv = work / "tree" / "venv"
    prefix = Path(sys.prefix)
    python = f"{GRADING_IN_GUEST}/venv/bin/python"
    for dist in dists:
        for f in dist.files or []:
            src = Path(os.path.normpath(dist.locate_file(f)))
            if not src.is_file() or not src.is_relative_to(prefix):
                continue
            dst = venv / src.relative_to(prefix)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            if dst.parent.name == "bin" and dst.read_bytes()[:2] == b"#!":
                lines = dst.read_bytes().split(b"\n", 1)
                if b"python" in lines[0]:
                    dst.write_bytes(f"#!{python}\n".encode() + (lines[1] if len(lines) > 1 else b""))
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3", "python3.11"):
        (venv / "bin" / name).symlink_to("/usr/bin/python3")
    version = ".".join(map(str, sys.version_info[:3]))
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {version}\n")
    reg = work / "tree" / "registry" / "docker" / "registry" / "v2"
    for repo in GRADING_REPOS:
        shutil.copytree(store / "repositories" / repo, reg / "repositories" / repo)
    for digest in blobs:
        rel = Path("blobs") / "sha256" / digest[:2] / digest / "data"
        (reg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(store / rel, reg / rel)
    shutil.copy2(registry, work / "tree" / "docker-registry")
    _sh(["chmod", "-R", "u+rwX,go+rX,go-w", str(work / "tree")])  # the course registry's files are 0600
    size_mb = 128 + sum(f.stat().st_size for f in (work / "tree").rglob("*") if f.is_file()) * 3 // 2 // 2**20
    _sh(["mke2fs", "-q", "-t", "ext4", "-E", "root_owner=0:0", "-d", str(work / "tree"), str(work / "g.img"),
         f"{size_mb}M"], timeout=1800)
    for old in cache.glob("grading-*.img"):
        old.unlink()
    os.replace(work / "g.img", img)
    shutil.rmtree(work, ignore_errors=True)
    return img, time.monotonic() - t0


def _grading_files(tree: Path) -> None:
    """The course (generated here: ``./lab grade generate``) and lab 4's two submissions, into ``tree``:
    ``.vmgrade/course`` and ``.vmgrade/submissions/<student>/lab4/lab4.ipynb``."""
    import nbformat

    from grader.course import Course

    top = tree / ".vmgrade"
    course = Course(top / "course")
    course.generate((GRADING_LAB,))  # the one lab graded there (all four: one nbgrader run, seconds longer)
    shutil.rmtree(top / "course" / "grading", ignore_errors=True)
    lab = GRADING_LAB
    honest = REPO / "tests" / "labs_submissions" / "submitted" / "alice" / lab / f"{lab}.ipynb"
    subs = top / "submissions"
    (subs / "alice" / lab).mkdir(parents=True)
    shutil.copy(honest, subs / "alice" / lab / f"{lab}.ipynb")
    # The fork bomb: tasks 1 and 2 right; task 3's answer starts one in a container and one in the
    # kernel itself, and waits while they run into the sandbox's pids limit.
    nb = nbformat.read(honest, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "task3-answer")
    answer.source = ('import subprocess, time\n'
                     'lab.run("busybox:1.35", ["sh", "-c", "f() { f | f & }; f; sleep 600"], name="bomb")\n'
                     'subprocess.Popen(["sh", "-c", "f() { f | f & }; f"])\n'
                     'time.sleep(10)\n')
    (subs / "bomber" / lab).mkdir(parents=True)
    nbformat.write(nb, subs / "bomber" / lab / f"{lab}.ipynb")


def project_disk(into: Path, nonce: str) -> Path:
    """The repository (tracked and new, not ignored) and labctl's guest packages, as a small ext4 disk."""
    tree = into / "project"
    tree.mkdir(parents=True)
    tree.chmod(0o755)
    listed = _sh(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if not src.is_file() or src.is_symlink():
            continue
        dst = tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    site = tree / ".vmsite"
    site.mkdir()
    seen: set[str] = set()
    for dist in GUEST_DISTS:
        for top in _dist_files(dist, seen):
            if top.is_dir():
                shutil.copytree(top, site / top.name, ignore=shutil.ignore_patterns("__pycache__"))
            elif top.is_file():
                shutil.copy2(top, site / top.name)
    _grading_files(tree)
    for d in [tree, *(p for p in tree.rglob("*") if p.is_dir())]:
        d.chmod(0o755)  # the lab's account reads the course (the one-time step checks that it can)
    for f in (p for p in tree.rglob("*") if p.is_file()):
        f.chmod(0o755 if os.access(f, os.X_OK) else 0o644)
    (tree / ".vmcheck-nonce").write_text(nonce)
    if os.environ.get("DLAB_VM_GRADE_ONLY"):  # a quicker loop while working on the grading part
        (tree / ".vmcheck-grade-only").touch()
    size_mb = 64 + sum(f.stat().st_size for f in tree.rglob("*") if f.is_file()) * 2 // 2**20
    img = into / "project.img"
    _sh(["mke2fs", "-q", "-t", "ext4", "-E", "root_owner=0:0", "-d", str(tree), str(img), f"{size_mb}M"])
    shutil.rmtree(tree)
    return img


def _tsc_khz() -> int | None:
    """As kernel_ext.vmcompare.qemu: telling a TCG guest its TSC rate avoids a calibration that can hang."""
    text = Path("/proc/cpuinfo").read_text()
    m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)
    return int(float(m.group(1)) * 1000) if m and "constant_tsc" in text else None


@dataclass
class VMRun:
    """One boot: every console line, the guest's ``key=value`` results, and host-side timings."""

    nonce: str
    lines: list[str] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    attempts: int = 0

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])


def _qemu(disk: BaseDisk, project: Path, grading: Path, mem_mib: int, smp: int) -> list[str]:
    append = CMDLINE
    khz = _tsc_khz()
    if khz:
        append += f" tsc_early_khz={khz}"
    # Guest timeouts are real time (dockerd gives its containerd 15 s, fixed): on a busy host the
    # emulated CPU is starved, so the VM runs at a higher priority (root; others just get a warning).
    return ["nice", "-n", "-10", "qemu-system-x86_64", "-name", "dlab-cgroup2-check", "-M", "q35",
            "-accel", "tcg,thread=multi",
            "-smp", str(smp), "-m", str(mem_mib), "-nodefaults", "-no-user-config", "-no-reboot",
            "-display", "none", "-serial", "stdio", "-kernel", str(disk.kernel), "-initrd", str(disk.initrd),
            "-append", append,
            "-drive", f"file={disk.image},format=raw,if=virtio,snapshot=on",
            "-drive", f"file={project},format=raw,if=virtio",  # made for this run: the one-time step chowns in it
            "-drive", f"file={grading},format=raw,if=virtio,readonly=on",
            "-device", "virtio-rng-pci"]


def _boot_once(run: VMRun, argv: list[str], boot_timeout: float, total_timeout: float,
               say: Callable[[str], None]) -> bool:
    """True if the guest said it booted (whatever came after); False: hung before that."""
    run.attempts += 1
    run.lines, run.results = [], {}
    lines: queue.Queue[str | None] = queue.Queue()
    t0 = time.monotonic()
    env = {**os.environ, "TMPDIR": str(cache_dir())}  # snapshot=on's overlay: next to the disk
    vm = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True, env=env)

    def read() -> None:
        assert vm.stdout
        for raw in vm.stdout:
            lines.put(raw.decode(errors="replace").rstrip("\r\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    prefix = f"{MARK} {run.nonce} "
    booted = done = False
    live = open(cache_dir() / "live-console.log", "w")  # to follow a run: tail -f
    try:
        while True:
            limit = (boot_timeout if not booted else total_timeout) - (time.monotonic() - t0)
            try:
                line = lines.get(timeout=max(limit, 0.01))
            except queue.Empty:
                say(f"the VM {'hung while booting' if not booted else 'did not finish'} "
                    f"after {time.monotonic() - t0:.0f} s")
                return booted
            if line is None:
                return booted
            run.lines.append(line)
            live.write(line + "\n")
            live.flush()
            at = line.find(prefix)
            if at < 0:
                continue
            key, _, value = line[at + len(prefix):].partition("=")
            word = key.split()[0] if key else ""
            if word == "booted":
                booted = True
                run.timings["boot_s"] = time.monotonic() - t0
                say(f"VM booted in {run.timings['boot_s']:.0f} s (TCG)")
            elif word == "done":
                done = True
                run.timings["guest_s"] = time.monotonic() - t0 - run.timings.get("boot_s", 0)
            else:
                run.results[key.strip()] = value.strip()
            if done:
                try:
                    vm.wait(timeout=60)  # it powers itself off
                except subprocess.TimeoutExpired:
                    pass
                return True
    finally:
        live.close()
        if vm.poll() is None:
            vm.kill()
        vm.wait()
        run.timings["qemu_s"] = time.monotonic() - t0


def run_check(mem_mib: int = 2560, smp: int = 2, boot_timeout: float = 300, total_timeout: float = 2700,
              say: Callable[[str], None] = print) -> VMRun:
    """Build (or find) the disks, boot, and return what the guest reported. A hung boot is retried once."""
    t0 = time.monotonic()
    engine = engine_tree(say=say)
    disk = base_disk(engine, say=say)
    run = VMRun(nonce=secrets.token_hex(4))
    if disk.built_s is not None:
        run.timings["base_build_s"] = disk.built_s
    grading, built = grading_disk(say=say)
    if built is not None:
        run.timings["grading_build_s"] = built
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="run-") as tmp:
        t1 = time.monotonic()
        project = project_disk(Path(tmp), run.nonce)
        run.timings["project_disk_s"] = time.monotonic() - t1
        argv = _qemu(disk, project, grading, mem_mib, smp)
        for _ in range(2):
            if _boot_once(run, argv, boot_timeout, total_timeout, say):
                break
    run.timings["total_s"] = time.monotonic() - t0
    (cache_dir() / "last-console.log").write_text("\n".join(run.lines) + "\n")
    (cache_dir() / "last-run.json").write_text(
        json.dumps({"results": run.results, "timings": run.timings, "attempts": run.attempts}, indent=1))
    return run


if __name__ == "__main__":  # python tests/vm/vmimage.py: one run, every line shown
    r = run_check()
    print("\n".join(r.lines))
    print(json.dumps({"results": r.results, "timings": r.timings, "attempts": r.attempts}, indent=1))
