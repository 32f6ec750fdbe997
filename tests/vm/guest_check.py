"""Runs inside the cgroup v2 VM (tests/vm/vmimage.py), as root, at boot: what an instructor's Debian 12
machine does. Root runs the lab's one-time step; the lab's account starts the lab's rootless engine
through labctl's own code; every finding is printed as ``DLAB-VM <nonce> key=value``.

``guest_check.py NONCE`` (root) calls itself as the account: ``NONCE start`` and ``NONCE stop``.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from asroot import cgroups as rootcg
from labengine import cgroups

NONCE = sys.argv[1] if len(sys.argv) > 1 else "none"
ACCOUNT = "dockerlab"
LAB_HOME = "/srv/dockerlab-lab"  # the course's disk is read-only here; the lab keeps its data on this one
IMAGE = "dlab/busybox:vm"
PROBE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def out(key: str, value: object) -> None:
    text = " ".join(str(value).split())  # one line on the console, whatever the value
    print(f"DLAB-VM {NONCE} {key}={text}", flush=True)


def sh(cmd: list[str], timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {e.timeout} s")


def account_env() -> dict[str, str]:
    """What root's ./lab gives the account (asroot.__main__._as_account): a clean environment."""
    pw = pwd.getpwnam(ACCOUNT)
    return {"HOME": pw.pw_dir, "USER": ACCOUNT, "LOGNAME": ACCOUNT, "PATH": PROBE_PATH, "LAB_AS_ACCOUNT": "1",
            "LAB_HOME": LAB_HOME, "PYTHONDONTWRITEBYTECODE": "1"}


def as_account(mode: str, timeout: float = 900) -> int:
    env = [f"{k}={v}" for k, v in account_env().items()]
    cmd = ["runuser", "-u", ACCOUNT, "--", "env", "-i", *env, sys.executable, __file__, NONCE, mode]
    return subprocess.call(cmd, timeout=timeout, cwd="/")


def procs_under(cgroup_dir: Path) -> dict[int, int]:
    """pid -> real uid of every process in a cgroup subtree."""
    found: dict[int, int] = {}
    for procs in cgroup_dir.rglob("cgroup.procs"):
        try:
            pids = [int(x) for x in procs.read_text().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found[pid] = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")))
    return found


def engine_named_procs() -> dict[int, tuple[str, int]]:
    """Every process of the engine's kinds on the machine, whoever runs it: pid -> (name, uid)."""
    names = {"rootlesskit", "dockerd", "containerd", "containerd-shim", "slirp4netns", "runc", "exe"}  # comm: 15 chars
    found = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            comm = (p / "comm").read_text().strip()
            status = (p / "status").read_text()
        except OSError:
            continue
        if comm in names:
            found[int(p.name)] = (comm, int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:"))))
    return found


def root_main() -> int:
    t0 = time.monotonic()
    out("init", Path("/proc/1/comm").read_text().strip())
    out("hierarchy", cgroups.hierarchy())
    out("v1_mounted", any(" cgroup " in ln for ln in Path("/proc/mounts").read_text().splitlines()))
    out("kernel", os.uname().release)
    # 1. The one-time root step, as `sudo ./lab setup` runs it (python -m asroot setup: the bash
    #    bootstrap would only install packages, which this image already has). It gives the labs'
    #    solutions to the account's group (system.protect_solutions): the clone is root's to write, as on
    #    an instructor's machine (the boot unit mounted this throwaway disk read-only).
    sh(["mount", "-o", "remount,rw", "/mnt/project"])
    t = time.monotonic()
    r = sh([sys.executable, "-m", "asroot", "setup"], env={**os.environ, "LAB_HOME": LAB_HOME}, cwd="/")
    out("setup_rc", r.returncode)
    out("setup", (r.stderr.strip().splitlines() or ["(nothing)"])[-1].replace("\x1b[1m", "").replace("\x1b[0m", ""))
    out("setup_s", f"{time.monotonic() - t:.1f}")
    if r.returncode != 0:
        return 1
    pw = pwd.getpwnam(ACCOUNT)
    uid = pw.pw_uid
    out("account_uid", uid)
    manager = cgroups.ROOT / "user.slice" / f"user-{uid}.slice" / f"user@{uid}.service"
    out("linger", Path(f"/var/lib/systemd/linger/{ACCOUNT}").exists())
    out("user_manager", sh(["systemctl", "is-active", f"user@{uid}.service"]).stdout.strip())
    out("user_bus", cgroups.user_bus(uid) is not None)
    out("raw_cgroup", (cgroups.ROOT / cgroups.parent_name(ACCOUNT)).exists())
    for name in ("memory.max", "pids.max", "cgroup.subtree_control"):
        try:
            out(f"manager_{name}", (manager / name).read_text().strip())
        except OSError as e:
            out(f"manager_{name}", f"unreadable ({e.strerror})")
    # 2. The engine packages, where ./lab up would have fetched them (this VM has no network).
    cache = Path(pw.pw_dir) / ".cache" / "dockerlab" / "engine"
    cache.mkdir(parents=True, exist_ok=True)
    src = Path("/opt/dockerlab-engine")
    meta = json.loads((src / "current.json").read_text())
    os.rename(src / meta["version"], cache / meta["version"])
    meta["root"] = str(cache / meta["version"])
    (cache / "current.json").write_text(json.dumps(meta))
    sh(["chown", "-R", f"{ACCOUNT}:{ACCOUNT}", str(Path(pw.pw_dir) / ".cache")])
    # Emulated disk and CPU: dockerd gives its containerd 15 s to start, so read the programs into the
    # page cache first (a real machine's first start is seconds).
    t = time.monotonic()
    for f in [*(cache / meta["version"] / "usr").rglob("*"), Path("/usr/sbin/runc"), Path("/usr/bin/slirp4netns")]:
        if f.is_file() and not f.is_symlink():
            with open(f, "rb") as fh:
                while fh.read(1 << 20):
                    pass
    out("prewarm_s", f"{time.monotonic() - t:.1f}")
    if Path("/mnt/project/.vmcheck-grade-only").exists():  # a quicker loop while working on grading
        grade_main()
        return 0
    # 3. The account starts the engine and uses it; root looks at it from outside meanwhile.
    rc = as_account("start")
    out("start_rc", rc)
    procs = procs_under(manager)
    out("manager_procs", len(procs))
    out("manager_proc_uids", ",".join(map(str, sorted(set(procs.values())))) or "none")
    named = engine_named_procs()
    out("engine_procs", ",".join(sorted({f"{n}:{u}" for n, u in named.values()})) or "none")
    out("engine_procs_as_root", sum(1 for _, u in named.values() if u == 0))
    outside = [pid for pid in named if pid not in procs]
    out("engine_procs_outside_manager", len(outside))
    # 4. ./lab doctor, as root runs it (one-time step again, then the account).
    r = sh([sys.executable, "-m", "asroot", "doctor"], env={**os.environ, "LAB_HOME": LAB_HOME}, cwd="/")
    line = next((ln for ln in r.stdout.splitlines() if ln[2:].startswith("cgroup ")), "(no cgroup line)")
    out("doctor_cgroup", line)
    # 5. The account stops it; nothing of the engine may be left.
    rc = as_account("stop")
    out("stop_rc", rc)
    time.sleep(1)
    left = {pid: n for pid, (n, _) in engine_named_procs().items()}
    out("left_after_stop", ",".join(sorted(left.values())) or "none")
    out("root_check_s", f"{time.monotonic() - t0:.1f}")
    try:
        member_check()
    except Exception as e:  # its own test says what went wrong; grading goes on
        out("member_exception", f"{type(e).__name__}: {e}")
    try:
        grade_main()
    except Exception as e:  # the engine checks above stand on their own
        out("grade_exception", f"{type(e).__name__}: {e}")
    return 0


def member_check() -> None:
    """A classroom member's cgroup on cgroup v2 + systemd: root makes it itself (no user manager, which
    would run outside the member's network namespace and limits), and root's gate enters it or refuses."""
    name = "dlclass-vm"
    if sh(["id", name]).returncode != 0:
        sh(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
    rootcg.delegate(name, cgroups.LabLimits(memory_mb=512, pids=256), systemd=False)
    base = cgroups.ROOT / cgroups.parent_name(name)
    out("member_cgroup", base.is_dir())
    for knob in ("memory.max", "memory.swap.max", "pids.max"):
        try:
            out(f"member_{knob}", (base / knob).read_text().strip())
        except OSError as e:
            out(f"member_{knob}", f"unreadable ({e.strerror})")
    out("member_linger", Path(f"/var/lib/systemd/linger/{name}").exists())
    child = subprocess.run([sys.executable, "-c", "import sys; from labengine import cgroups; "
                            f"cgroups.enter({name!r}, strict=True); print(open('/proc/self/cgroup').read().strip())"],
                           capture_output=True, text=True, timeout=60)
    out("member_entered", child.stdout.strip() or child.stderr.strip()[-200:])
    refused = subprocess.run([sys.executable, "-c",
                              "from labengine import cgroups; cgroups.enter('nobody', strict=True)"],
                             capture_output=True, text=True, timeout=60)
    out("member_strict_refuses", refused.returncode != 0 and "FileNotFoundError" in refused.stderr)
    out("member_user_manager",
        sh(["systemctl", "is-active", f"user@{pwd.getpwnam(name).pw_uid}.service"]).stdout.strip())


# -- ./lab grade in the VM: two submissions of lab 4, one honest, one fork bomb ----------------------
GRADING = Path("/opt/dockerlab-grading")  # the third disk (vmimage.grading_disk)
GRADE_HOME = Path("/srv/dockerlab-grade-lab")  # root's lab home for grading: its state names the mirror
MIRROR_PORT = 5112
GRADE_TIMEOUT = 2100  # a normal run grades in 2-7 minutes; guest_grade dumps its threads' stacks every 10


def grade_main() -> None:
    """The course's mirror (lab 4's images, read-only, served by nobody), then tests/vm/guest_grade.py
    with the grading venv's python: it grades and prints its own findings."""
    t0 = time.monotonic()
    GRADING.mkdir(parents=True, exist_ok=True)
    r = sh(["mount", "-o", "ro", "/dev/vdc", str(GRADING)])
    out("grade_mount_rc", r.returncode)
    if r.returncode != 0:
        out("grade_mount", r.stderr.strip())
        return
    subprocess.run(["cp", str(GRADING / "docker-registry"), "/usr/bin/docker-registry"], check=True)
    from labengine.registry import Registry
    from labcore.state import State

    (GRADE_HOME / "run").mkdir(parents=True, exist_ok=True)
    mirror = Registry("mirror", MIRROR_PORT, GRADING / "registry", GRADE_HOME / "run", GRADE_HOME, readonly=True)
    config = GRADE_HOME / "registry-mirror.yml"  # (the storage's own folder is read-only)
    config.write_text(mirror.config_text())
    config.chmod(0o644)
    with open(GRADE_HOME / "mirror.log", "wb") as log:
        reg = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                "/usr/bin/docker-registry", "serve", str(config)],
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd="/")
    deadline = time.monotonic() + 120
    while not mirror.ready() and time.monotonic() < deadline and reg.poll() is None:
        time.sleep(0.5)
    out("grade_mirror_up", mirror.ready())
    (GRADE_HOME / "state.json").write_text(State(mirror=mirror.addr).to_json())
    course = Path("/srv/grade-course")
    shutil.copytree("/mnt/project/.vmgrade/course", course)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LAB_HOME": str(GRADE_HOME), "PYTHONPATH": "/mnt/project", "PYTHONDONTWRITEBYTECODE": "1",
           "LANG": "C.UTF-8", "DOCKERLAB_LANG": "en"}
    try:  # well before the host gives up on the VM (vmimage.run_check's 2700 s), so the rest still reports
        rc: object = subprocess.call([str(GRADING / "venv" / "bin" / "python"), "/mnt/project/tests/vm/guest_grade.py",
                                      NONCE, str(course), "/mnt/project/.vmgrade/submissions", "/srv/grade-results"],
                                     env=env, cwd="/", stdin=subprocess.DEVNULL, timeout=GRADE_TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = f"killed after {GRADE_TIMEOUT} s"
    out("grade_rc", rc)
    reg.kill()
    reg.wait()
    out("grade_check_s", f"{time.monotonic() - t0:.1f}")


def account_start() -> int:
    from labengine import enginepkgs
    from labctl.__main__ import lab_engine
    from labcore.state import load_state, paths, save_state

    out("whoami", f"{pwd.getpwuid(os.getuid()).pw_name}:{os.getuid()}")
    p = paths()
    p.ensure()
    binaries = enginepkgs.ensure(print)
    engine = lab_engine(p, binaries, "")  # as ./lab up makes it (no course mirror in this VM)
    engine.start_timeout = 900  # emulated CPU: the first start compiles nothing but is slow
    out("engine_systemd", engine.systemd)
    out("engine_version", binaries.version)
    for attempt in range(1, 6):  # under emulation, containerd can miss dockerd's fixed 15 s start window
        t = time.monotonic()
        try:
            engine.start()
            break
        except Exception as e:
            out("engine_start_error", f"attempt {attempt} after {time.monotonic() - t:.0f} s: {str(e)[:200]}")
            log = engine.log.read_text(errors="replace").splitlines()[-6:] if engine.log.exists() else []
            for ln in log:
                out("engine_log", ln[:300])
    else:
        return 1
    out("engine_start_attempts", attempt)
    out("engine_start_s", f"{time.monotonic() - t:.1f}")
    state = load_state(p)
    state.engine, state.docker_host, state.docker_cli = "lab", engine.host, binaries.docker
    save_state(state, p)
    docker = [binaries.docker, "-H", engine.host]
    info = json.loads(sh([*docker, "info", "--format", "{{json .}}"]).stdout or "{}")
    out("info_rootless", any("rootless" in str(o) for o in info.get("SecurityOptions") or []))
    out("info_cgroup_version", info.get("CgroupVersion"))
    out("info_cgroup_driver", info.get("CgroupDriver"))
    out("info_store", dict(info.get("DriverStatus") or []).get("driver-type", "?"))
    out("info_warnings", "; ".join(info.get("Warnings") or []) or "none")
    pid = engine.pid()
    where, memory = cgroups.engine_limits(pid) if pid else ("", None)
    out("engine_cgroup", where)
    out("engine_memory_limit", memory)
    # A tiny image: a static busybox, imported (no registry, no network in this VM).
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add("/bin/busybox", "bin/busybox")
        for applet in ("sh", "cat", "dd", "sleep", "seq"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    t = time.monotonic()
    imported = subprocess.run([*docker, "import", "-c", "ENV PATH=/bin", "-", IMAGE], input=buf.getvalue(),
                              capture_output=True, timeout=300, check=False)
    out("import_rc", imported.returncode)
    run = [*docker, "run", "--rm"]
    r = sh([*run, "-m", "64m", "--pids-limit", "50", IMAGE, "cat", "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/pids.max"])
    out("first_run_s", f"{time.monotonic() - t:.1f}")
    out("limited", r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode} {r.stderr.strip()[-300:]}")
    chapter_1(docker)
    # The limits act, not just appear: 48 MiB of buffer in a 32 MiB container (no swap) is killed...
    dd = "dd if=/dev/zero of=/dev/null bs=48M count=1"
    r = sh([*run, "-m", "32m", "--memory-swap", "32m", IMAGE, *dd.split()])
    out("oom_rc", r.returncode)
    # ... and a shell cannot start a 10th process under --pids-limit 10.
    loop = "i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); echo $i; done"
    r = sh([*run, "--pids-limit", "10", IMAGE, "sh", "-c", loop])
    out("pids_started", (r.stdout.split() or ["0"])[-1])
    # Without limits (the control: the same dd passes), left running for root's look at every process
    # of the engine and for the stop. Emulation is slow: one container does all three.
    control = f"cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; {dd} 2>/dev/null; echo dd=$?; exec sleep 600"
    r = sh([*docker, "run", "-d", "--name", "dlab-sleeper", "--stop-timeout", "1", IMAGE, "sh", "-c", control])
    out("sleeper_rc", r.returncode)
    cid = r.stdout.strip()
    deadline, logs = time.monotonic() + 300, ""
    while "dd=" not in logs and time.monotonic() < deadline:
        logs = sh([*docker, "logs", cid]).stdout
        time.sleep(1)
    words = logs.split()
    out("unlimited", " ".join(words[:2]) if "dd=" in logs else f"no output: {logs[-200:]}")
    out("no_limit_dd_rc", next((w.removeprefix("dd=") for w in words if w.startswith("dd=")), "?"))
    inspect = json.loads(sh([*docker, "inspect", cid]).stdout or "[{}]")[0]
    spid = (inspect.get("State") or {}).get("Pid", 0)
    out("sleeper_cgroup", cgroups.engine_limits(spid)[0] if spid else "?")
    return 0


CHAPTER_1 = "notebooks/src/01-what-is-docker.md"
CHAPTER_1_RUN = "read = !docker run "  # 1.3's cell: what `-m 64m` reads inside the container


def chapter_1(docker: list[str]) -> None:
    """Chapter 1's 1.3 on this machine: the very ``docker run`` line the chapter's cell runs (read from the
    chapter's source on the project disk, with this VM's busybox). With ``info_cgroup_version`` and
    ``info_cgroup_driver`` (``docker info``, as the chapter's ``lab.client.info()``) it is what the next cell
    hands to ``kernel_ext.hostfacts.memory_limit``; the host renders the sentence from these."""
    line = next((ln for ln in (Path("/mnt/project") / CHAPTER_1).read_text().splitlines()
                 if ln.startswith(CHAPTER_1_RUN)), "")
    args = shlex.split(line.removeprefix("read = !docker "))
    if not args:
        out("ch01_read", f"no line starting {CHAPTER_1_RUN!r} in {CHAPTER_1}")
        return
    image = next((a for a in args[1:] if not a.startswith("-") and a[0].isalpha() and ":" in a), "")
    if not image:
        out("ch01_read", f"no image in {line!r}")
        return
    args[args.index(image)] = IMAGE  # busybox:1.35 is not in this VM (no registry); the static busybox is
    t = time.monotonic()
    r = sh([*docker, *args])
    out("ch01_run_s", f"{time.monotonic() - t:.1f}")
    out("ch01_args", " ".join(args))
    out("ch01_read", r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode} {r.stderr.strip()[-300:]}")


def account_stop() -> int:
    from labengine import enginepkgs
    from labctl.__main__ import lab_engine
    from labcore.state import paths

    p = paths()
    engine = lab_engine(p, enginepkgs.ensure(print), "")
    t = time.monotonic()
    out("engine_was_running", engine.stop())
    out("engine_stop_s", f"{time.monotonic() - t:.1f}")
    bus = cgroups.user_bus()
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus}",
           "XDG_RUNTIME_DIR": str(bus.parent if bus else "")}
    r = sh(["systemctl", "--user", "list-units", "--all", "--plain", "--no-legend", engine.scope, engine.slice,
            "docker-*"], env=env)
    out("units_after_stop", " ".join(ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()) or "none")
    return 0


if __name__ == "__main__":
    mode = sys.argv[2] if len(sys.argv) > 2 else "root"
    try:
        code = {"root": root_main, "start": account_start, "stop": account_stop}[mode]()
    except Exception as e:  # the host must see why, not a silent VM
        out(f"{mode}_exception", f"{type(e).__name__}: {e}")
        code = 1
    sys.exit(code)
