"""The course image's entrypoint (under tini, as the unprivileged account ``learner``).

Seeds a new volume (the course registry, the labs' student versions), points the engine cache at
the engine in the image, then runs ``./lab up`` exactly as on a host: the rootless engine, the three
registries and JupyterLab, all as ``learner``. Prints the URL, waits, and on ``docker stop``
(SIGTERM) runs ``./lab down`` so the engine stops its containers cleanly. Everything the learner
makes (notebooks, images, containers: the engine's data root) lives in ``/home/learner``, the volume.

With an argument, one of the image's roles in a Kubernetes learner pod instead (``engine`` or
``notebook``: :mod:`courseimage.pod`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

OPT = Path("/opt/dockerlab")
PORT = 8888


def say(msg: str) -> None:
    print(f"[dockerlab] {msg}", flush=True)


def seed(home: Path, lab_home: Path) -> None:
    """What a new volume needs from the image; never overwrites anything already there."""
    for rel in ("registry/upstream", "grading/release"):
        dest = lab_home / rel
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(OPT / "seed" / rel, dest, symlinks=True)
    # chapter 2's VM (the amd64 image's): file by file, so a volume an older image made gets it too
    vm = OPT / "seed" / "vm"
    for src in sorted(vm.rglob("*")) if vm.is_dir() else []:
        dest = lab_home / "vm" / src.relative_to(vm)
        if src.is_file() and not dest.exists() and not dest.is_symlink():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    # ./lab finds its engine in the account's cache (labengine.enginepkgs): here, the image's copy.
    cache = home / ".cache" / "dockerlab" / "engine"
    if cache.is_symlink() and os.readlink(cache) == str(OPT / "engine"):
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.is_symlink() or cache.is_file():
        cache.unlink()
    elif cache.is_dir():
        shutil.rmtree(cache)
    cache.symlink_to(OPT / "engine")


NARROW = ("--device /dev/net/tun --security-opt seccomp=unconfined --security-opt systempaths=unconfined "
          "(and --security-opt apparmor=unconfined where AppArmor is on)")


def confinement() -> str | None:
    """Why this container cannot run a rootless engine, in one sentence, or None. The same three
    things courseimage/README.md explains: the TAP device, namespaces, a fresh /proc in them."""
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return f"/dev/net/tun is missing: run the image with --privileged, or with {NARROW}."
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return ("this container may not create namespaces or mount /proc in them "
                f"({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'unshare failed'}): "
                f"run the image with --privileged, or with {NARROW}.")
    return None


def lab(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "labctl", *args], cwd=OPT)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        from courseimage import pod

        return pod.main(argv)
    os.umask(0o077)
    home = Path(os.environ.get("HOME", "/home/learner"))
    lab_home = Path(os.environ.get("LAB_HOME", home / ".lab"))
    if os.getuid() == 0:
        say("this image runs as the account 'learner': drop '--user root' (or '-u 0') from docker run.")
        return 2
    if not os.access(home, os.W_OK):
        say(f"{home} is not writable by uid {os.getuid()}: use a new named volume "
            f"(-v dockerlab-work:{home}), which the image fills with the right owner.")
        return 2
    why = confinement()
    if why:
        say(why)
        return 2
    seed(home, lab_home)
    stop = {"asked": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if lab("up", "--ip", "0.0.0.0", "--port", str(PORT), "--no-browser") != 0:
        say("the lab did not start: the lines above say why.")
        lab("down")
        return 1
    state = json.loads((lab_home / "state.json").read_text())
    url = state["jupyter_url"].replace("://0.0.0.0:", "://127.0.0.1:")
    say(f"JupyterLab: {url}")
    say("(if you published another host port than 8888, use that port instead)")
    from labctl.jupyter import jupyter_pid
    from labcore.state import paths

    while not stop["asked"]:
        time.sleep(1)
        if not jupyter_pid(paths()):
            say("JupyterLab stopped; stopping the engine and the registries")
            break
    rc = lab("down")
    return 0 if stop["asked"] and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
