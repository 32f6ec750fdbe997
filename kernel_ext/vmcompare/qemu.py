"""Boot, watch and stop qemu microVMs; probe whether KVM really works. Every boot has a timeout.

>>> vm = boot(assets, accel="tcg", timeout=15)   # doctest: +SKIP
>>> vm.ready_s, vm.guest_kernel                  # doctest: +SKIP
(2.2, '6.1.0-56-cloud-amd64')
>>> vm.stop()                                    # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from labcore.proc import cmdline, memory_kib, parent_and_state, pids

from ..errors import ToolMissing, VMError
from .assets import BENCH, READY, VMAssets

__all__ = ["VM", "boot", "find_qemu", "live_vms", "pick_machine", "qemu_processes", "stop_all"]

QEMU = "qemu-system-x86_64"
_LIVE: set[VM] = set()
_LOCK = threading.Lock()


def find_qemu() -> str:
    path = shutil.which(QEMU)
    if not path:
        raise ToolMissing("vm.qemu_missing")
    return path


@lru_cache(maxsize=4)
def pick_machine(qemu: str) -> str:
    """``microvm`` where this qemu has it, else ``q35``."""
    out = subprocess.run([qemu, "-machine", "help"], capture_output=True, text=True, timeout=20,
                         check=False).stdout
    return "microvm" if re.search(r"^microvm\s", out, re.MULTILINE) else "q35"


def _tsc_khz() -> int | None:
    """The host TSC frequency. Under TCG the guest reads the host's TSC; telling the guest its rate
    skips the PIT calibration that sometimes fails under emulation and then hangs the boot."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    if "constant_tsc" not in text:
        return None
    m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)
    return int(float(m.group(1)) * 1000) if m else None




@dataclass(eq=False)
class VM:
    """One qemu process: its serial console is read line by line in a thread."""

    assets: VMAssets
    accel: str = "tcg"
    machine: str = "microvm"
    mem_mib: int = 128
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))
    proc: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    ready_s: float | None = None
    marker: str = ""
    attempts: int = 0
    _q: queue.Queue[tuple[float, str]] = field(default_factory=queue.Queue)
    _t0: float = 0.0

    @property
    def name(self) -> str:
        return f"vmcmp-{self.nonce}"

    def command(self) -> list[str]:
        append = f"console=ttyS0 quiet panic=-1 vmcmp.id={self.nonce}"
        if self.machine == "microvm":
            append += " pci=off"
        khz = _tsc_khz()
        if self.accel == "tcg" and khz:
            append += f" tsc_early_khz={khz}"
        return [find_qemu(), "-name", self.name, "-M", self.machine, "-accel", self.accel,
                "-m", str(self.mem_mib), "-smp", "1", "-nodefaults", "-no-user-config",
                "-no-reboot", "-display", "none", "-serial", "stdio",
                "-kernel", str(self.assets.kernel), "-initrd", str(self.assets.initramfs),
                "-append", append]

    def start(self) -> None:
        self.attempts += 1
        self.lines, self.ready_s, self.marker = [], None, ""
        self._q = queue.Queue()
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        with _LOCK:
            _LIVE.add(self)
        # each boot gets its own queue: a reader of an earlier, killed boot must not feed this one
        threading.Thread(target=self._read, args=(self.proc, self._q), daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], q: queue.Queue[tuple[float, str]]) -> None:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").replace("\r", "").rstrip("\n")
                q.put((time.monotonic(), line))
        except (OSError, ValueError):  # the pipe was closed by stop()
            pass
        q.put((time.monotonic(), "\0EOF"))

    def wait_for(self, prefix: str, timeout: float) -> tuple[float, str] | None:
        """The first console line starting with ``prefix`` (and its arrival time), or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self._q.get(timeout=left)
            except queue.Empty:
                return None
            if line == "\0EOF":
                return None
            self.lines.append(line)
            # the console may glue a kernel message to our line: look anywhere in it
            if prefix in line:
                return at, line[line.index(prefix):]
        return None

    def wait_ready(self, timeout: float) -> bool:
        got = self.wait_for(READY, timeout)
        if got and f"id={self.nonce}" in got[1]:
            self.ready_s, self.marker = got[0] - self._t0, got[1]
            return True
        return False

    def _field(self, key: str) -> str:
        m = re.search(rf"\b{key}=(\S+)", self.marker)
        return m.group(1) if m else ""

    @property
    def guest_kernel(self) -> str:
        return self._field("kernel")

    @property
    def guest_uptime_s(self) -> float | None:
        v = self._field("uptime")
        return float(v) if v else None

    @property
    def hypervisor(self) -> str:
        """What the guest kernel detected: ``KVM`` under KVM, ``none`` under plain TCG."""
        return self._field("hypervisor")

    def memory_kib(self) -> tuple[int, int]:
        return memory_kib(self.proc.pid) if self.proc else (0, 0)

    def send(self, line: str) -> None:
        if self.proc and self.proc.stdin and self.proc.poll() is None:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()

    def bench(self, rounds: int, timeout: float, reps: int = 5) -> float | None:
        """Run the benchmark inside the guest; its own nanosecond count (best of ``reps``), or None."""
        self.send(f"bench {rounds} {reps}")
        got = self.wait_for(BENCH, timeout)
        m = re.search(r"ns=(\d+)", got[1]) if got else None
        return float(m.group(1)) if m else None

    def stop(self, grace: float = 3.0) -> None:
        """Ask the guest to power off; kill qemu if it does not exit within ``grace`` seconds."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                try:
                    self.send("off")
                    proc.wait(grace)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
                    proc.wait(5)
        finally:
            for pipe in (proc.stdin, proc.stdout):
                try:
                    if pipe:
                        pipe.close()
                except OSError:
                    pass
            with _LOCK:
                _LIVE.discard(self)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        self.stop(grace=0.1)

    def tail(self, n: int = 2) -> str:
        while not self._q.empty():
            self.lines.append(self._q.get_nowait()[1])
        return " | ".join(ln for ln in self.lines[-n:] if ln and ln != "\0EOF")[:200]


def live_vms() -> list[VM]:
    with _LOCK:
        return list(_LIVE)


def stop_all() -> None:
    """Kill every qemu this process started and has not yet stopped."""
    for vm in live_vms():
        vm.kill()


atexit.register(stop_all)


def qemu_processes(name_prefix: str = "vmcmp-", parent: int | None = None) -> list[int]:
    """PIDs of running qemu children of ``parent`` (default: this process) named ``name_prefix*``.

    Only our own children: another notebook on the same host may be running its own comparison.
    """
    ppid = os.getpid() if parent is None else parent
    found = []
    for pid in pids():
        try:
            args = cmdline(pid)
            their_parent, state = parent_and_state(pid)
        except (OSError, ValueError):
            continue
        if their_parent != ppid or state == "Z" or not args or not args[0].endswith(QEMU.encode()):
            continue
        name = args[args.index(b"-name") + 1] if b"-name" in args[:-1] else b""
        if name.decode(errors="replace").startswith(name_prefix):
            found.append(pid)
    return found


def boot(assets: VMAssets, accel: str = "tcg", machine: str | None = None, timeout: float = 15.0,
         retries: int = 1, mem_mib: int = 128) -> VM:
    """Boot until the ready marker; on a timeout kill and retry ``retries`` times, then raise."""
    vm = VM(assets, accel=accel, machine=machine or pick_machine(find_qemu()), mem_mib=mem_mib)
    for _ in range(retries + 1):
        vm.start()
        if vm.wait_ready(timeout):
            return vm
        code = vm.proc.poll() if vm.proc else None
        detail = vm.tail()
        vm.kill()
        if code not in (None, 0):  # qemu itself refused to run: retrying will not help
            raise VMError("vm.boot_failed", code=code, detail=detail or "?")
    raise VMError("vm.boot_timeout", seconds=f"{timeout:g}", n=vm.attempts)
