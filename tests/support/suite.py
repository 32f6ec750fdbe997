"""``./lab test`` run by root (``sudo ./lab test`` and CI): the account's suite on a throwaway lab, then
the suites that need root (tests/host; tests/vm and the course image's builds beside it; tests/image)
and tests/afterwards. Test orchestration, not product code: root's ``asroot.__main__`` calls
:func:`run_as_root` for ``test``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from labcore.errors import LabFailure
from labcore.state import REPO, load_state, paths
from labctl.__main__ import say
from tests.support import hostcheck

__all__ = ["run_as_root"]


def _engine_up() -> bool:
    sock = load_state().docker_host.removeprefix("unix://")
    return bool(sock) and os.path.exists(sock)


def run_as_root(user: str, args: argparse.Namespace, argv: list[str],
                _as_account: Callable[..., list[str]]) -> int:
    home = str(paths().home / "test")
    full = not args.pytest_args
    before = hostcheck.snapshot()
    if full:  # the learner's own lab, with work of theirs in it, that the tests must not touch
        main_was_up = subprocess.call(_as_account(user, ["status"]), stdout=subprocess.DEVNULL) == 0 \
            and bool(load_state().docker_host) and _engine_up()
        if subprocess.call(_as_account(user, ["up", "--no-jupyter"])) != 0:
            return 1
        hostcheck.plant_learner_work(user, load_state(), paths())
    with tempfile.TemporaryFile("w+") as vm_out, tempfile.TemporaryFile("w+") as build_out, \
            (_arm64_emulation() if full else contextlib.nullcontext()):
        vm: subprocess.Popen[bytes] | None = None
        builds: subprocess.Popen[bytes] | None = None
        try:
            if full:
                # The course image from this clone (issue 20), both architectures, as `./lab image build` makes
                # them, at the lowest priority from now on (CPU the suites leave idle); tests/image follows
                # tests/host.
                builds = _start_image_builds(user, build_out, _as_account)
            rc = subprocess.call(_as_account(user, argv, {"LAB_TEST_KEEP": "1", "LAB_TEST_HOME": home}))
            host_rc = 0
            if full and builds is not None:
                # The cgroup v2 VM (emulated, ~10 minutes, at a higher priority for dockerd's fixed 15 s) runs
                # beside tests/host. Started right after `up` it slowed the account's suite from ~9 to 15 min,
                # and the whole run took as long (27 min 23 s on a quiet machine).
                vm = _start_vm_tests(user, vm_out)
                say("running the checks that need root: tests/host (grading sandboxes, what other accounts can "
                    "reach); tests/vm, if not done yet, beside them")
                env = {**os.environ, "LAB_HOME": home, "LAB_ACCOUNT": user, "LAB_MAIN_HOME": str(paths().home)}
                host_rc = subprocess.call([sys.executable, "-m", "pytest", "tests/host", "--durations=10"],
                                          cwd=REPO, env=env)
                image_rc = _image_tests(builds, build_out, env)
                host_rc = host_rc or image_rc
        except BaseException:
            for child in (vm, builds):
                if child is not None and child.poll() is None:
                    child.send_signal(signal.SIGINT)  # interrupted: the VM test's own clean-up stops its qemu
            raise
        if vm is not None:
            vm_rc = _vm_report(vm, vm_out)  # whatever the other suites said
            host_rc = host_rc or vm_rc
    down_rc = subprocess.call(_as_account(user, ["down", "--throwaway"], {"LAB_HOME": home}))
    if full and not main_was_up:
        down_rc = down_rc or subprocess.call(_as_account(user, ["down"]))
        say("checking that ./lab down left nothing behind: tests/afterwards")
        env = {**os.environ, "LAB_ACCOUNT": user, "LAB_BEFORE": before, "LAB_MAIN_HOME": str(paths().home),
               "LAB_TEST_HOME": home}
        down_rc = down_rc or subprocess.call([sys.executable, "-m", "pytest", "tests/afterwards"], cwd=REPO, env=env)
    return rc or host_rc or down_rc


def _start_vm_tests(user: str, out: IO[str]) -> subprocess.Popen[bytes]:
    """tests/vm in a pytest of its own, as root (qemu, mmdebstrap), its report into ``out``."""
    say("tests/vm (the rootless engine's limits and grading in a cgroup v2 VM) starts beside the other "
        "tests; its report follows tests/host's")
    main_home = str(paths().home)  # the course registry's images, read: the tests' home is not made yet
    env = {**os.environ, "LAB_HOME": main_home, "LAB_ACCOUNT": user, "LAB_MAIN_HOME": main_home}
    return subprocess.Popen([sys.executable, "-m", "pytest", "tests/vm", "--durations=5", "-p", "no:cacheprovider"],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _start_image_builds(user: str, out: IO[str], _as_account: Callable[..., list[str]]) -> subprocess.Popen[bytes]:
    """``./lab image build`` then ``./lab image build --arch arm64`` (qemu-user-static), as the lab's account,
    into the lab's own home (``.lab/image`` of this clone); their output into ``out``."""
    say("the course image (amd64, then arm64 under emulation) builds beside the tests; tests/image follows tests/host")
    native = shlex.join(_as_account(user, ["image", "build"]))
    arm64 = shlex.join(_as_account(user, ["image", "build", "--arch", "arm64"]))
    return subprocess.Popen(["nice", "-n", "19", "sh", "-c", f"{native} && {arm64}"], stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _image_tests(builds: subprocess.Popen[bytes], out: IO[str], env: dict[str, str]) -> int:
    """The builds' report, then tests/image (a rootful engine of its own plays Docker Desktop) on what they made."""
    rc = builds.wait()
    out.seek(0)
    say("the course image's builds (ran beside the tests):")
    sys.stdout.write("".join(out.read().splitlines(keepends=True)[-12:]))
    sys.stdout.flush()
    if rc != 0:
        say("the course image did not build: tests/image not run (the build's log is in .lab/logs)")
        return rc
    say("running tests/image: the course image under a throwaway rootful engine, in Chromium, as a dev container, "
        "as the Kubernetes pod's roles, arm64 under emulation")
    return subprocess.call([sys.executable, "-m", "pytest", "tests/image", "--durations=10", "-p", "no:cacheprovider"],
                           cwd=REPO, env={**env, "LAB_IMAGE_SUITE": "1"})


BINFMT = Path("/proc/sys/fs/binfmt_misc")


@contextlib.contextmanager
def _arm64_emulation() -> Iterator[None]:
    """qemu-user-static's aarch64 entry enabled for the arm64 build and its smoke test; what was not so before
    (binfmt_misc not mounted, the entry disabled) is put back afterwards."""
    if not shutil.which("update-binfmts") or not Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists():
        raise LabFailure("The arm64 course image is built under emulation: as root, apt-get install qemu-user-static "
                         "binfmt-support arch-test (./lab test installs them), then run ./lab test again.")
    mounted = False
    if not (BINFMT / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
        mounted = True
    entry = BINFMT / "qemu-aarch64"
    enabled = entry.exists() and entry.read_text().startswith("enabled")
    if not enabled:
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=True, capture_output=True)
    try:
        yield
    finally:
        if not enabled:
            subprocess.run(["update-binfmts", "--disable", "qemu-aarch64"], check=False, capture_output=True)
        if mounted:
            subprocess.run(["umount", str(BINFMT)], check=False)


def _vm_report(vm: subprocess.Popen[bytes], out: IO[str]) -> int:
    rc = vm.wait()
    out.seek(0)
    say("tests/vm (ran beside the other tests):")
    sys.stdout.write(out.read())
    sys.stdout.flush()
    return rc
