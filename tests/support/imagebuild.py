"""Root's ``./lab test``: the course image built from this clone and tested (tests/image). Test
orchestration, not product code (``tests.support.suite`` calls it).

tests/image runs the image ``--privileged`` under a rootful engine: root in that container is root on
the host. So nothing in the image may come from an account that runs learners' code (the lab's
account, ``dockerlab``): a throwaway account of root's making, ``dlimgbuild``, builds it from the clone
alone (its own ``./lab up``: the engine's packages, the course images, the labs' student versions,
chapter 2's kernel; PyPI and Debian's mirror), in a home only it and root can enter, and is removed
with everything it made when the tests are done. It reads the labs' solutions (to make the student
versions) through the lab account's group, as the lab account does.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from asroot import cgroups as rootcg
from asroot.accounts import ensure_account, remove_subids
from asroot.gradeaccounts import kill_account
from labcore import safefs
from labcore.errors import LabFailure
from labcore.state import REPO
from labctl.__main__ import say
from labengine import cgroups

__all__ = ["BUILDER", "BUILDER_HOME", "ImageTests", "arm64_emulation", "remove_builder", "start_builds", "stop_builds"]

BUILDER = "dlimgbuild"
BUILDER_HOME = Path("/var/lib/dockerlab-imagebuild")
COMMENT = "Docker Lab course image build (./lab test)"
# its registries' ports (beside the lab's 5100-5102 and the tests' lab, which picks 5110-5112 when those are taken)
PORTS = {"LAB_UPSTREAM_PORT": "5170", "LAB_MIRROR_PORT": "5171", "LAB_LEARNER_PORT": "5172"}
TAIL = 16 * 1024  # what root reads back of the builds' output
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def lab_home() -> Path:
    return BUILDER_HOME / ".lab"


def remove_builder() -> None:
    """The builder account and everything it made (its processes, home, cgroups, subordinate ids)."""
    try:
        pw = pwd.getpwnam(BUILDER)
    except KeyError:
        return
    if COMMENT not in pw.pw_gecos:
        raise LabFailure(f"An account {BUILDER} exists that ./lab test did not make: remove or rename it, then run "
                         "./lab test again.")
    kill_account(pw.pw_uid, pause=0.1)
    safefs.remove_tree(BUILDER_HOME)  # never following a link the account made
    for run in Path("/tmp").glob(f"dockerlab-{pw.pw_uid}-*"):  # its lab's runtime directory (labcore.state)
        if os.lstat(run).st_uid == pw.pw_uid:
            safefs.remove_tree(run)
    subprocess.run(["userdel", BUILDER], capture_output=True, check=False)
    remove_subids(BUILDER)
    for base in cgroups.bases(BUILDER):
        cgroups.rmdir_tree(base)


def _make_builder(lab_account: str) -> None:
    remove_builder()  # whatever an interrupted run left
    group = grp.getgrgid(pwd.getpwnam(lab_account).pw_gid).gr_name  # the labs' solutions' group
    ensure_account(BUILDER, comment=COMMENT, home=BUILDER_HOME, create_home=False, system=True, groups=(group,),
                   claim=f"An account {BUILDER} exists that ./lab test did not make: remove or rename it.")
    rootcg.delegate(BUILDER, cgroups.LabLimits.default())


def start_builds(lab_account: str, out: IO[bytes], as_account: Callable[..., list[str]]) -> subprocess.Popen[bytes]:
    """The builder made anew, then ``./lab image build`` and ``--arch arm64`` as it, at the lowest CPU and
    I/O priority, in its own cgroup and session; their output into ``out``."""
    _make_builder(lab_account)
    say(f"the course image (amd64, then arm64 under emulation) builds beside the tests as the throwaway account "
        f"{BUILDER}, from the clone alone; tests/image follows tests/host")
    env = {"LAB_HOME": str(lab_home()), **PORTS}
    native, arm64, down = (shlex.join(as_account(BUILDER, argv, env)) for argv in (
        ["image", "build"], ["image", "build", "--arch", "arm64"], ["down"]))
    script = f"{native} && {arm64}; rc=$?; {down} >/dev/null 2>&1; exit $rc"  # its engine stopped, not killed
    return subprocess.Popen(["nice", "-n", "19", "ionice", "-c", "3", "sh", "-c", script],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/",
                            start_new_session=True, preexec_fn=lambda: cgroups.enter(BUILDER))


def stop_builds(builds: subprocess.Popen[bytes]) -> None:
    """Interrupted: the builds' whole session, then the account's leftovers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(builds.pid, signal.SIGTERM)
    try:
        builds.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(builds.pid, signal.SIGKILL)
        builds.wait()


def _tail(out: IO[bytes]) -> str:
    out.seek(0, os.SEEK_END)
    out.seek(max(0, out.tell() - TAIL))
    lines = out.read().decode(errors="replace").splitlines()[-12:]
    return "".join(ch for ch in "\n".join(lines) if ch.isprintable() or ch == "\n") + "\n"


class ImageTests(threading.Thread):
    """When the builds are done (in the background, beside tests/host): tests/image (a rootful engine of its own
    plays Docker Desktop) on the builder's archives. The builds' last lines and the tests' output go to
    ``report`` (root prints it after tests/host); :meth:`interrupt` stops either."""

    def __init__(self, builds: subprocess.Popen[bytes], build_out: IO[bytes], env: dict[str, str],
                 report: IO[bytes]) -> None:
        super().__init__(name="tests/image", daemon=True)
        self.builds, self.build_out, self.env, self.report = builds, build_out, env, report
        self.tests: subprocess.Popen[bytes] | None = None
        self.rc = 1
        self.stopped = threading.Event()

    def _say(self, msg: str) -> None:
        self.report.write(f"[lab] {msg}\n".encode())
        self.report.flush()

    def run(self) -> None:
        rc = self.builds.wait()
        self._say("the course image's builds (ran beside the tests):")
        self.report.write(_tail(self.build_out).encode())
        if rc != 0 or self.stopped.is_set():
            self._say(f"the course image did not build: tests/image not run (the build's log is in {lab_home()}/logs)")
            self.rc = rc or 1
            return
        self._say("tests/image: the course image under a throwaway rootful engine, in Chromium, as a dev container, "
                  "as the Kubernetes pod's roles, arm64 under emulation")
        self.tests = subprocess.Popen(
            [sys.executable, "-m", "pytest", "tests/image", "--durations=10", "-p", "no:cacheprovider"],
            cwd=REPO, env={**self.env, "LAB_IMAGE_SUITE": "1", "LAB_IMAGE_DIR": str(lab_home() / "image")},
            stdout=self.report, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.rc = self.tests.wait()

    def interrupt(self) -> None:
        self.stopped.set()
        if self.builds.poll() is None:
            stop_builds(self.builds)
        if self.tests is not None and self.tests.poll() is None:
            self.tests.send_signal(signal.SIGINT)  # its fixtures' clean-up removes the engine it started
            self.tests.wait()

    def result(self) -> int:
        """Wait for it; print the report; the tests' exit status."""
        self.join()
        self.report.seek(0)
        sys.stdout.buffer.write(self.report.read())
        sys.stdout.flush()
        return self.rc


@contextlib.contextmanager
def arm64_emulation() -> Iterator[None]:
    """qemu-user-static's aarch64 entry enabled for the arm64 build and its smoke test; binfmt_misc mounted
    if it was not. What this changed is put back afterwards (the entry disabled or removed, the mount
    undone); the formats Debian's package registered when ./lab installed it stay, as the package's."""
    if not shutil.which("update-binfmts") or not Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists():
        raise LabFailure("The arm64 course image is built under emulation: as root, apt-get install qemu-user-static "
                         "binfmt-support arch-test (./lab test installs them), then run ./lab test again.")
    mounted, entry = False, BINFMT / "qemu-aarch64"
    registered = was_enabled = False
    try:
        if not (BINFMT / "status").exists():
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
            mounted = True
        registered = entry.exists()
        was_enabled = registered and safefs.read_kernel(entry).startswith("enabled")
        if registered and not was_enabled:
            safefs.write_kernel(entry, 1)
        elif not registered:
            subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=True, capture_output=True)
        yield
    finally:
        if registered and not was_enabled and entry.exists():
            safefs.write_kernel(entry, 0)
        elif not registered and entry.exists():
            safefs.write_kernel(entry, -1)  # unregistered again
        if mounted:
            subprocess.run(["umount", str(BINFMT)], check=False)
