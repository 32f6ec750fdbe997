"""`./lab` subcommands, once the venv exists (the bash bootstrap calls ``python -m labctl``)."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import webbrowser

from . import doctor, jupyter, proc
from .engine import Engine, pick_subnet
from .images import publish
from .proc import LabFailure
from .registry import lab_registries
from .state import REPO, LabPaths, State, load_state, paths, save_state


def say(msg: str) -> None:
    print(f"\033[1m[lab]\033[0m {msg}", file=sys.stderr, flush=True)


def lab_engine(p: LabPaths, state: State, mirror: str) -> Engine:
    tag = hashlib.sha256(str(p.home).encode()).hexdigest()[:6]
    bridge = state.bridge or f"dlab-{tag}"
    subnet = state.subnet or pick_subnet(int(tag[:2], 16))
    return Engine(name="lab", data_root=p.home / "engine" / "data", run=p.run, logs=p.logs,
                  bridge=bridge, subnet=subnet, mirror=mirror, owner=os.environ.get("LAB_USER"))


def setup(engine_choice: str) -> tuple[State, LabPaths]:
    """Everything but JupyterLab: registries, engine, course images. Idempotent and quick when warm."""
    t0 = time.monotonic()
    p = paths()
    p.ensure()
    state = load_state(p)
    up_port = int(os.environ.get("LAB_UPSTREAM_PORT", state.upstream.rpartition(":")[2] or 5000))
    mirror_port = int(os.environ.get("LAB_MIRROR_PORT", state.mirror.rpartition(":")[2] or 5001))
    upstream, mirror = lab_registries(p, up_port, mirror_port)
    for reg in (upstream, mirror):
        if reg.pid() is None and not proc.port_free(reg.port):
            new = proc.free_port(reg.port + 10, avoid={upstream.port, mirror.port})
            say(f"port {reg.port} is taken by another program; the {reg.name} registry uses {new} instead")
            reg.port = new
    mirror.remote = f"http://{upstream.addr}"
    for reg in (upstream, mirror):
        if reg.start():
            say(f"{reg.name} registry started on {reg.addr}")
    state.upstream, state.mirror = upstream.addr, mirror.addr
    if engine_choice == "existing" or (engine_choice == "auto" and state.engine == "existing"):
        host = os.environ.get("DOCKER_HOST") or state.docker_host
        if not host:
            raise LabFailure("--engine existing needs DOCKER_HOST to point at your engine "
                             "(e.g. export DOCKER_HOST=unix:///var/run/docker.sock).")
        state.engine, state.docker_host = "existing", host
        say(f"using your engine at {host}; for offline pulls of names like 'nginx' its daemon.json "
            f"needs \"registry-mirrors\": [\"http://{mirror.addr}\"]")
    else:
        engine = lab_engine(p, state, mirror.addr)
        state.engine, state.bridge, state.subnet = "lab", engine.bridge, engine.subnet
        if engine.start():
            say(f"lab engine started ({engine.host}, bridge {engine.bridge} {engine.subnet})")
        state.docker_host = engine.host
    if not shutil.which("docker") and not os.path.exists(state.docker_cli):
        raise LabFailure("The docker CLI is missing: run ./lab up as root so it can install docker.io.")
    if not os.path.exists(state.docker_cli):
        state.docker_cli = shutil.which("docker") or state.docker_cli
    save_state(state, p)
    import docker

    client = docker.DockerClient(base_url=state.docker_host, timeout=600)
    state.images = publish(client, upstream.addr, p.home)
    client.close()
    vm_assets(p)
    jupyter.install_kernel(state, p)
    save_state(state, p)
    say(f"ready in {time.monotonic() - t0:.1f} s: engine {state.docker_host}, "
        f"mirror {state.mirror}, upstream {state.upstream}")
    return state, p


def vm_assets(p: LabPaths) -> None:
    """Kernel and initramfs for the container-vs-VM comparison (chapter 2), if that part exists."""
    try:
        from kernel_ext.vmcompare import build_assets
    except ImportError:
        return
    try:
        build_assets(p.home / "vm")
    except Exception as e:  # the course works without the VM; chapter 2 then says why
        say(f"the virtual machine for chapter 2 could not be prepared: {e}")


def cmd_up(args: argparse.Namespace) -> int:
    state, p = setup(args.engine)
    if args.no_jupyter:
        return 0
    url = jupyter.start_jupyter(state, p, port=args.port)
    used = urllib.parse.urlsplit(url).port
    if used != args.port:
        say(f"port {args.port} is taken by another program; JupyterLab uses {used} instead")
    state.jupyter_url = url
    save_state(state, p)
    say(f"JupyterLab is running: {url}")
    if os.environ.get("DISPLAY") and not args.no_browser:
        webbrowser.open(url)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    state, p = setup(args.engine)
    env = {**os.environ, **jupyter.kernel_env(state, p)}
    selection = list(args.pytest_args)
    argv = [sys.executable, "-m", "pytest", *(selection or ["tests", "notebooks", "labs/source", "--nbval",
            "--nbval-sanitize-with", "tests/sanitize.cfg", "--durations=15"])]
    say("running: " + " ".join(argv[2:]))
    rc = subprocess.call(argv, cwd=REPO, env=env)
    if rc == 5:
        if selection:
            say("pytest collected no tests for that selection")
            return 0
        say("pytest collected no tests at all: the suite is missing, which is a failure")
        return 1
    return rc


def cmd_down(args: argparse.Namespace) -> int:
    p = paths()
    state = load_state(p)
    if jupyter.stop_jupyter(p):
        say("JupyterLab stopped")
    if state.engine == "lab":
        engine = lab_engine(p, state, state.mirror)
        if engine.stop():
            say("lab engine stopped")
        engine.remove_bridge()
    up, mirror = lab_registries(p, 0, 0)
    for reg in (mirror, up):
        if reg.stop():
            say(f"{reg.name} registry stopped")
    state.jupyter_url = ""
    if p.home.exists():
        save_state(state, p)
    if args.purge:
        proc.unmount_below(p.home)
        shutil.rmtree(p.home, ignore_errors=True)
        say(f"removed {p.home}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    p = paths()
    state = load_state(p)
    up, mirror = lab_registries(p, *(int(a.rpartition(":")[2] or 0) for a in (state.upstream, state.mirror)))
    rows = [("upstream registry", up.pid(), state.upstream), ("mirror registry", mirror.pid(), state.mirror)]
    if state.engine == "lab":
        rows.append(("lab engine", lab_engine(p, state, state.mirror).pid(), state.docker_host))
    rows.append(("JupyterLab", jupyter.jupyter_pid(p), state.jupyter_url))
    for name, pid, where in rows:
        print(f"{name:18} {'running' if pid else 'stopped':8} {('pid ' + str(pid)) if pid else '':10} {where}")
    print(doctor.versions(state))
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    setup("auto")  # graders seed their throwaway engines from the lab's mirror
    from labs.grading.cli import main as grade_main

    return int(grade_main(list(args.rest)))


def cmd_env(args: argparse.Namespace) -> int:
    state = load_state()
    if not state.docker_host:
        raise LabFailure("The lab is not set up yet: run ./lab up first.")
    print(f"export DOCKER_HOST={state.docker_host}")
    print("# use it in this shell with:  eval \"$(./lab env)\"")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./lab", description="Docker Lab launcher")
    sub = ap.add_subparsers(dest="cmd")
    up = sub.add_parser("up", help="set up everything and start JupyterLab")
    up.add_argument("--engine", choices=["lab", "existing", "auto"], default="auto")
    up.add_argument("--no-jupyter", action="store_true")
    up.add_argument("--no-browser", action="store_true")
    up.add_argument("--port", type=int, default=8888)
    test = sub.add_parser("test", help="set up, then run every test")
    test.add_argument("--engine", choices=["lab", "existing", "auto"], default="auto")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    down = sub.add_parser("down", help="stop what the lab started")
    down.add_argument("--purge", action="store_true", help="also delete the lab's data (.lab)")
    grade = sub.add_parser("grade", help="instructor: generate, autograde, export (see labs/README.md)")
    grade.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("status")
    sub.add_parser("env")
    sub.add_parser("doctor")
    args = ap.parse_args(argv)
    handlers = {"grade": cmd_grade, "up": cmd_up, "test": cmd_test, "down": cmd_down, "status": cmd_status,
                "env": cmd_env, "doctor": lambda a: doctor.run(load_state())}
    if args.cmd is None:
        args = ap.parse_args(["up"])
    try:
        return int(handlers[args.cmd](args))
    except LabFailure as e:
        print(f"\033[1;31m[lab]\033[0m {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n[lab] interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
