"""`./lab` subcommands, once the venv exists (the bash bootstrap calls ``python -m labctl``).

Run by root, ``./lab`` does the one-time system step (``asroot.system``) and then runs everything
else as the lab's unprivileged account (``dockerlab``, or ``LAB_USER``): the engine is rootless,
JupyterLab and its kernels are that account's processes. Run by an ordinary account, it needs no root
at all once ``sudo ./lab setup`` has been done.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import webbrowser
from pathlib import Path

from labengine import cgroups
from labctl import doctor
from labengine import enginepkgs
from labctl import jupyter
from labcore import proc
from labcore.subids import subid_range
from labcore.errors import LabFailure
from labengine.registry import lab_registries
from labengine.rootless import RootlessEngine
from labcore.state import REPO, LabPaths, State, load_state, paths, save_state

HOME_MARK = ".dockerlab-home"  # ./lab down --purge deletes only a directory that has it
DEFAULT_PORTS = {"upstream": 5100, "mirror": 5101, "learner": 5102}


def say(msg: str) -> None:
    print(f"\033[1m[lab]\033[0m {msg}", file=sys.stderr, flush=True)


def lab_engine(p: LabPaths, binaries: enginepkgs.EngineBinaries, mirror: str,
               insecure: tuple[str, ...] = ()) -> RootlessEngine:
    return RootlessEngine(name="lab", data_root=p.home / "engine" / "data", run=p.run, logs=p.logs,
                          binaries=binaries, mirror=mirror, insecure=insecure,
                          cgroup=cgroups.Delegated.for_engine(f"lab-{p.run.name.rpartition('-')[2]}"))


def _prerequisites() -> None:
    """What only root can give; one sentence naming the one-time step if it is missing."""
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        raise LabFailure("The lab's engine, JupyterLab and kernels never run as root: run ./lab as an "
                         "ordinary account, or as root without LAB_AS_ACCOUNT (it switches to 'dockerlab').")
    if subid_range(user) is None or subid_range(user, "gid") is None:
        raise LabFailure(f"The account {user} has no subuid/subgid range for a rootless engine: "
                         "run 'sudo ./lab setup' once, then ./lab up again.")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise LabFailure("/dev/net/tun is not usable by ordinary accounts: "
                         "run 'sudo ./lab setup' once, then ./lab up again.")
    for tool in ("newuidmap", "slirp4netns", "nsenter"):
        if not shutil.which(tool):
            raise LabFailure(f"{tool} is missing: run 'sudo ./lab setup' once (it installs uidmap and slirp4netns).")


def setup() -> tuple[State, LabPaths]:
    """Everything but JupyterLab: engine binaries, registries, rootless engine, course images.
    Idempotent and quick when warm."""
    t0 = time.monotonic()
    os.umask(0o077)
    _prerequisites()
    p = paths()
    p.ensure()
    (p.home / HOME_MARK).touch()
    state = load_state(p)
    binaries = enginepkgs.ensure(say)
    ports = {}
    for name, default in DEFAULT_PORTS.items():
        known = getattr(state, name if name != "learner" else "registry", "")
        ports[name] = int(os.environ.get(f"LAB_{name.upper()}_PORT") or known.rpartition(":")[2] or default)
    regs = lab_registries(p, ports["upstream"], ports["mirror"], ports["learner"])
    taken: set[int] = set()
    for reg in (regs.upstream, regs.mirror, regs.learner):
        ours = reg.pid() is not None and reg.config.exists() and f"'{reg.addr}'" in reg.config.read_text()
        if (not ours and not proc.port_free(reg.port)) or reg.port in taken:
            new = proc.free_port(reg.port + 10, avoid=taken | {r.port for r in regs.all()})
            say(f"port {reg.port} is taken by another program; the {reg.name} registry uses {new} instead")
            reg.port = new
        taken.add(reg.port)
    regs.mirror.remote = f"http://{regs.upstream.addr}"
    for reg in regs.all():
        if reg.start():
            say(f"{reg.name} registry started on {reg.addr}")
    state.upstream, state.mirror, state.registry = regs.upstream.addr, regs.mirror.addr, regs.learner.addr
    state.publisher = regs.publisher.addr
    engine = lab_engine(p, binaries, regs.mirror.addr,
                        (regs.mirror.addr, regs.upstream.addr, regs.learner.addr))
    if engine.start():
        say(f"rootless Docker Engine {binaries.version} started ({engine.host})")
    engine.forward([regs.upstream.port, regs.mirror.port, regs.learner.port])
    state.engine, state.docker_host = "lab", engine.host
    state.docker_cli = binaries.docker
    state.engine_version, state.engine_source = binaries.version, binaries.source
    save_state(state, p)
    _publish_images(state, p, regs, engine)
    vm_assets(p)
    jupyter.install_kernel(state, p)
    save_state(state, p)
    say(f"ready in {time.monotonic() - t0:.1f} s: rootless engine {binaries.version} ({state.docker_host}), "
        f"mirror {state.mirror}, upstream {state.upstream} (read-only), your registry {state.registry}")
    return state, p


def _publish_images(state: State, p: LabPaths, regs, engine) -> None:  # type: ignore[no-untyped-def]
    """Build what changed and push it through the publisher: while this runs, ``127.0.0.1:<upstream port>``
    inside the engine leads to the publisher's socket (the account's alone), not to the upstream's TCP port,
    which stays read-only: no other account on this machine can push into the course's images meanwhile."""
    import docker

    from labctl.images import publish, stale

    if not stale(regs.upstream.addr):
        return
    ports: list[int | str] = [regs.upstream.port, regs.mirror.port, regs.learner.port]
    try:
        engine.forward([f"{regs.upstream.port}={regs.publisher.addr.removeprefix('unix://')}", *ports[1:]])
        client = docker.DockerClient(base_url=state.docker_host, timeout=600)
        try:
            state.images = publish(client, regs.upstream.addr, p.home)
        finally:
            client.close()
    finally:  # whatever happened: the engine's upstream is the read-only one again
        engine.forward(ports)


def vm_assets(p: LabPaths) -> None:
    """Kernel and initramfs for the container-vs-VM comparison (chapter 2), if that part exists."""
    if os.environ.get("LAB_NO_VM"):  # the course image (courseimage/): no qemu, chapter 2 says why
        return
    try:
        from kernel_ext.vmcompare import build_assets
    except ImportError:
        return
    try:
        build_assets(p.home / "vm")
    except Exception as e:  # the course works without the VM; chapter 2 then says why
        say(f"the virtual machine for chapter 2 could not be prepared: {e}")


def cmd_up(args: argparse.Namespace) -> int:
    state, p = setup()
    if args.no_jupyter:
        return 0
    url = jupyter.start_jupyter(state, p, port=args.port, ip=args.ip)
    used = urllib.parse.urlsplit(url).port
    if used != args.port:
        say(f"port {args.port} is taken by another program; JupyterLab uses {used} instead")
    state.jupyter_url = url
    save_state(state, p)
    say(f"JupyterLab is running: {url}")
    if os.environ.get("DISPLAY") and not args.no_browser:
        webbrowser.open(url)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Instructor: execute chapters from their sources (notebooks/src/*.md) into notebooks/*.ipynb."""
    from labctl import authoring

    p = paths()
    state = load_state(p)
    try:
        chs = authoring.chapters(only=args.chapters)
    except ValueError as e:
        raise LabFailure(str(e)) from None
    if not args.no_exec:
        if not state.docker_host or not os.path.exists(state.docker_host.removeprefix("unix://")):
            raise LabFailure("The lab is not running: run ./lab up first, then ./lab build again.")
        os.environ.update(jupyter.jupyter_env(p))
        os.environ.update({"LAB_HOME": str(p.home), "DOCKER_HOST": state.docker_host})
    out = Path(args.out) if args.out else None
    if out is None and not os.access(authoring.NOTEBOOKS, os.W_OK):
        raise LabFailure(f"{authoring.NOTEBOOKS} is not writable by {pwd.getpwuid(os.getuid()).pw_name}: "
                         "run ./lab build as the account that owns this clone.")
    authoring.build(chs, execute=not args.no_exec, out=out, say=say)
    return 0


def cmd_author(args: argparse.Namespace) -> int:
    """Instructor: JupyterLab on the clone's notebooks/, where saving keeps each chapter's .md and
    .ipynb in sync (jupytext). Runs in the foreground until Ctrl-C."""
    from labctl import authoring

    p = paths()
    state = load_state(p)
    if not state.docker_host:
        raise LabFailure("The lab is not set up yet: run ./lab up first (the chapters run on its engine).")
    if not os.access(authoring.NOTEBOOKS / "src", os.W_OK):
        raise LabFailure(f"{authoring.NOTEBOOKS} is not writable by {pwd.getpwuid(os.getuid()).pw_name}: "
                         "run ./lab author as the account that owns this clone (as root, ./lab runs "
                         "everything as the lab's account, which cannot write here).")
    argv, url = jupyter.author_command(state, p, port=args.port)
    say(f"authoring the chapters in {authoring.NOTEBOOKS}: {url}")
    say("edit, save (the .md in notebooks/src follows), then: ./lab build NN && ./lab test")
    return subprocess.call(argv, env={**os.environ, **jupyter.jupyter_env(p), **jupyter.kernel_env(state, p)})




def test_home() -> str:
    """The tests' own lab home: its own engine and registries, never the learner's."""
    return str(paths().home / "test")


def cmd_test(args: argparse.Namespace) -> int:
    main_home = paths().home
    os.environ["LAB_HOME"] = os.environ.get("LAB_TEST_HOME") or test_home()
    mine, theirs = paths().home / "registry" / "upstream", main_home / "registry" / "upstream"
    if not mine.exists() and theirs.exists() and theirs != mine:  # built once, not twice
        os.umask(0o077)
        shutil.copytree(theirs, mine)
    state, p = setup()
    env = {**os.environ, **jupyter.jupyter_env(p), **jupyter.kernel_env(state, p)}
    selection = list(args.pytest_args)
    if selection[:1] == ["--fast"]:  # everyday work: unit and API tests, no notebooks, no root, no browser
        selection = ["tests", "-m", "not slow and not e2e", "--ignore=tests/host", "--ignore=tests/vm",
                     "--ignore=tests/afterwards", "--ignore=tests/e2e", "--deselect",
                     "tests/test_code_quality.py::test_mypy_is_clean", *selection[1:]]
    argv = [sys.executable, "-m", "pytest", *(selection or ["tests", "notebooks", "labs/source", "--nbval",
            "--nbval-sanitize-with", "tests/sanitize.cfg", "--ignore=tests/host", "--ignore=tests/vm",
            # tests/image: the course image's, root's (tests.support.suite runs it after building the image)
            "--ignore=tests/afterwards", "--ignore=tests/image",
            "--durations=15"])]
    # What the chapters and tests make with tempfile (a chapter's build directory, an exercise's work) goes
    # into one scratch directory, removed afterwards: a run leaves nothing in /tmp. pytest's own directories
    # stay where they were (its unix sockets' paths are long enough already).
    scratch = tempfile.mkdtemp(prefix="dockerlab-t")
    env.update(TMPDIR=scratch, PYTEST_DEBUG_TEMPROOT=env.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir())
    say("running: " + " ".join(argv[2:]))
    try:
        rc = subprocess.call(argv, cwd=REPO, env=env)
    finally:
        proc.remove_tree(Path(scratch))
        if not os.environ.get("LAB_TEST_KEEP"):  # root's ./lab test runs its host checks first
            _down(p, load_state(p), destroy_engine=True)
            _remove_run_dir(p)
    if rc == 5:
        if selection:
            say("pytest collected no tests for that selection")
            return 0
        say("pytest collected no tests at all: the suite is missing, which is a failure")
        return 1
    return rc


def _down(p: LabPaths, state: State, destroy_engine: bool = False) -> None:
    if jupyter.stop_jupyter(p):
        say("JupyterLab stopped")
    binaries = enginepkgs.EngineBinaries(root="/", version=state.engine_version, source="", packages={})
    engine = lab_engine(p, binaries, state.mirror)
    if destroy_engine:
        engine.destroy()
        say("the tests' engine and its data are gone")
    elif engine.stop():
        say("lab engine stopped")
    regs = lab_registries(p, 0, 0, 0)
    for reg in regs.all():
        if reg.stop():
            say(f"{reg.name} registry stopped")


def cmd_down(args: argparse.Namespace) -> int:
    p = paths()
    if args.purge and p.home.exists() and not (p.home / HOME_MARK).exists():
        raise LabFailure(f"{p.home} is not a lab home (no {HOME_MARK} in it): nothing was deleted.")
    state = load_state(p)
    _down(p, state, destroy_engine=args.throwaway)
    state.jupyter_url = ""
    if p.home.exists():
        save_state(state, p)
    if args.purge:
        proc.remove_tree(p.home)
        say(f"removed {p.home}")
    _remove_run_dir(p)
    return 0


def _remove_run_dir(p: LabPaths) -> None:
    """The lab's runtime directory (pid files, sockets, the engines' exec roots) once nothing it names runs:
    each start makes one (in /tmp without a user runtime directory), and none is left behind. Kept while a
    process of it still runs (another engine of this lab home's, such as the tests' throwaway ones)."""
    try:
        st = os.lstat(p.run)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():  # a link, or another account's: not ours
        return
    for pidfile in p.run.glob("*.pid"):
        try:
            if proc.parent_and_state(int(pidfile.read_text().strip()))[1] not in ("Z", "X"):
                return
        except (OSError, ValueError):
            continue
    proc.remove_tree(p.run)


def cmd_status(args: argparse.Namespace) -> int:
    p = paths()
    state = load_state(p)
    regs = lab_registries(p, *(int(a.rpartition(":")[2] or 0) for a in (state.upstream, state.mirror, state.registry)))
    rows = [(f"{r.name} registry", r.pid(), r.addr) for r in regs.all()]
    binaries = enginepkgs.EngineBinaries(root="/", version=state.engine_version, source="", packages={})
    rows.append(("lab engine", lab_engine(p, binaries, state.mirror).pid(), state.docker_host))
    rows.append(("JupyterLab", jupyter.jupyter_pid(p), state.jupyter_url.split("?")[0]))
    for name, pid, where in rows:
        print(f"{name:20} {'running' if pid else 'stopped':8} {('pid ' + str(pid)) if pid else '':10} {where}")
    if state.engine_version:
        print(f"engine: rootless docker.io {state.engine_version}, from {state.engine_source}")
    print(doctor.versions(state))
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    # Root's part is only the sandboxes: each submission is graded as a throwaway pool account
    # (asroot.gradeaccounts, made here on first use) on its own rootless engine (asroot/grading/sandbox.py).
    if os.geteuid() != 0 and any(a in ("autograde", "all") for a in args.rest):
        raise LabFailure("Grading makes a throwaway account and sandbox per submission: run 'sudo ./lab grade ...'.")
    from grader.cli import main as grade_main

    return int(grade_main(list(args.rest)))


def cmd_image(args: argparse.Namespace) -> int:
    """The course as one container image (``courseimage``, a layer above the launcher: run, not imported)."""
    return subprocess.call([sys.executable, "-m", "courseimage", *args.rest], cwd=REPO)


def cmd_env(args: argparse.Namespace) -> int:
    p = paths()
    state = load_state(p)
    if not state.docker_host:
        raise LabFailure("The lab is not set up yet: run ./lab up first.")
    print(f"export DOCKER_HOST={state.docker_host}")
    print(f"export DOCKER_CONFIG={p.home / 'docker-config'}")
    print(f"export PATH={p.home / 'bin'}:$PATH")
    print("# use it in this shell with:  eval \"$(./lab env)\"")
    return 0








def failed(e: BaseException) -> int:
    """The exit code for an error ``./lab`` expects (one sentence, no traceback), said on stderr; shared
    with root's ``asroot.__main__``."""
    if isinstance(e, KeyboardInterrupt):
        print("\n[lab] interrupted", file=sys.stderr)
        return 130
    print(f"\033[1;31m[lab]\033[0m {e}", file=sys.stderr)
    return 1


def parse(argv: list[str]) -> argparse.Namespace:
    """``./lab``'s arguments. Everything after ``grade`` is the grader's (its own ``--help`` included) and
    everything after ``test`` is pytest's (``--fast`` or a selection): argparse's REMAINDER would take
    neither an option first, so they are split off here."""
    if argv[:1] in (["grade"], ["test"], ["image"]):
        args = parser().parse_args(argv[:1])
        args.rest = args.pytest_args = [a for i, a in enumerate(argv[1:]) if i or a != "--"]
        return args
    return parser().parse_args(argv)


def parser() -> argparse.ArgumentParser:
    """``./lab``'s command line (root's ``asroot.__main__`` parses the same one)."""
    ap = argparse.ArgumentParser(prog="./lab", description="Docker Lab launcher")
    sub = ap.add_subparsers(dest="cmd")
    up = sub.add_parser("up", help="set up everything and start JupyterLab")
    up.add_argument("--no-jupyter", action="store_true")
    up.add_argument("--no-browser", action="store_true")
    up.add_argument("--port", type=int, default=8888)
    up.add_argument("--ip", default="127.0.0.1", help="address JupyterLab listens on (default: this machine only)")
    test = sub.add_parser("test", help="set up a throwaway lab, then run every test")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    down = sub.add_parser("down", help="stop what the lab started")
    down.add_argument("--purge", action="store_true", help="also delete the lab's data (.lab)")
    down.add_argument("--throwaway", action="store_true", help=argparse.SUPPRESS)
    grade = sub.add_parser("grade", add_help=False,  # ./lab grade --help is the grader's own
                           help="instructor: generate, autograde, export (./lab grade --help; labs/README.md)")
    grade.add_argument("rest", nargs=argparse.REMAINDER)
    build = sub.add_parser("build", help="instructor: execute chapters from notebooks/src/*.md into the notebooks")
    build.add_argument("chapters", nargs="*", help="chapter numbers or labs, e.g. 06 00 lab3 (default: all chapters)")
    build.add_argument("--no-exec", action="store_true", help="write the notebooks without running them")
    build.add_argument("--out", help=argparse.SUPPRESS)
    author = sub.add_parser("author", help="instructor: edit the chapters in JupyterLab (text and notebook in sync)")
    author.add_argument("--port", type=int, default=8890)
    cls = sub.add_parser("classroom", help="instructor (root): JupyterHub, one isolated Docker engine per learner")
    cls.add_argument("action", choices=["up", "down", "status", "add", "passwd", "collect"])
    cls.add_argument("name", nargs="?", help="add/passwd: the learner's name; collect: the folder for ./lab grade")
    cls.add_argument("--learners", type=int, default=3)
    cls.add_argument("--ip", default="127.0.0.1", help="address the Hub listens on (default: this machine only)")
    cls.add_argument("--port", type=int, default=8000)
    cls.add_argument("--host", help="the Hub's host name; each member's server is served from <name>.<host>, an "
                     "origin of its own (default: localhost, for --ip 127.0.0.1; a room: a name with wildcard DNS)")
    cls.add_argument("--single-origin", action="store_true",
                     help="every server on the Hub's one origin (no host names needed; only for members who trust "
                          "each other: a page one serves acts for whoever opens it)")
    setup_p = sub.add_parser("setup", help="root, once: what a rootless lab needs from this machine")
    setup_p.add_argument("--user",
                         help="the account that will run ./lab (default: the one that ran sudo, else dockerlab)")
    image = sub.add_parser("image", add_help=False,
                           help="the course as one container image: build, save [FILE], push REGISTRY (courseimage/)")
    image.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("status")
    sub.add_parser("env")
    sub.add_parser("doctor")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    args = parse(argv)
    if args.cmd is None:
        argv = ["up"]
        args = ap.parse_args(argv)
    handlers = {"build": cmd_build, "author": cmd_author, "grade": cmd_grade, "up": cmd_up, "test": cmd_test,
                "down": cmd_down, "status": cmd_status, "env": cmd_env, "image": cmd_image,
                "doctor": lambda a: doctor.run(load_state())}
    try:
        if args.cmd in ("classroom", "setup"):
            raise LabFailure(f"./lab {args.cmd} makes accounts and changes the machine: "
                             f"run 'sudo ./lab {args.cmd} ...'.")
        if os.geteuid() == 0 and not os.environ.get("LAB_AS_ACCOUNT"):
            raise LabFailure("As root, ./lab runs through root's wing (python -m asroot), which does the one-time "
                             "step and then runs this as the lab's account: use ./lab, not python -m labctl.")
        return int(handlers[args.cmd](args))
    except (LabFailure, KeyboardInterrupt) as e:
        return failed(e)


if __name__ == "__main__":
    sys.exit(main())
