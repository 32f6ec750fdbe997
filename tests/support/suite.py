"""``./lab test`` run by root (``sudo ./lab test`` and CI): the account's suite on a throwaway lab, then
the suites that need root (tests/host; tests/vm and the course image's builds beside it; tests/image)
and tests/afterwards. Test orchestration, not product code: root's ``asroot.__main__`` calls
:func:`run_as_root` for ``test``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import IO

from labcore.state import REPO, load_state, paths
from labctl.__main__ import say
from tests.support import hostcheck, imagebuild

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
    with tempfile.TemporaryFile("w+") as vm_out, tempfile.TemporaryFile("w+b") as build_out, \
            tempfile.TemporaryFile("w+b") as image_out, \
            (imagebuild.arm64_emulation() if full else contextlib.nullcontext()):
        vm: subprocess.Popen[bytes] | None = None
        builds: subprocess.Popen[bytes] | None = None
        images: imagebuild.ImageTests | None = None
        try:
            if full:
                # The course image from this clone (issue 20), both architectures, as `./lab image build` makes
                # them, by an account of its own at the lowest priority from now on (CPU the suites leave idle);
                # tests/image follows tests/host.
                builds = imagebuild.start_builds(user, build_out, _as_account)
            rc = subprocess.call(_as_account(user, argv, {"LAB_TEST_KEEP": "1", "LAB_TEST_HOME": home}))
            host_rc = 0
            if full and builds is not None:
                # The cgroup v2 VM (emulated, ~10 minutes, at a higher priority for dockerd's fixed 15 s) runs
                # beside tests/host. Started right after `up` it slowed the account's suite from ~9 to 15 min,
                # and the whole run took as long (27 min 23 s on a quiet machine).
                vm = _start_vm_tests(user, vm_out)
                env = {**os.environ, "LAB_HOME": home, "LAB_ACCOUNT": user, "LAB_MAIN_HOME": str(paths().home)}
                say("running the checks that need root: tests/host (grading sandboxes, what other accounts can "
                    "reach); tests/vm, if not done yet, beside them; then tests/image")
                host_rc = subprocess.call([sys.executable, "-m", "pytest", "tests/host", "--durations=10"],
                                          cwd=REPO, env=env)
                # after tests/host, not beside it: its checks of what runs as root on this host would see the
                # rootful engine that plays Docker Desktop
                images = imagebuild.ImageTests(builds, build_out, env, image_out)
                images.start()
                host_rc = images.result() or host_rc
        except BaseException:
            if vm is not None and vm.poll() is None:
                vm.send_signal(signal.SIGINT)  # interrupted: the VM test's own clean-up stops its qemu
            if images is not None:
                images.interrupt()
            elif builds is not None and builds.poll() is None:
                imagebuild.stop_builds(builds)
            raise
        finally:
            if builds is not None:
                imagebuild.remove_builder()
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


def _vm_report(vm: subprocess.Popen[bytes], out: IO[str]) -> int:
    rc = vm.wait()
    out.seek(0)
    say("tests/vm (ran beside the other tests):")
    sys.stdout.write(out.read())
    sys.stdout.flush()
    return rc
