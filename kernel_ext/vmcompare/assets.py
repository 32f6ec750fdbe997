"""What the VM boots: a Debian kernel, a busybox initramfs and a static CPU benchmark, cached by content.

>>> a = build_assets("/tmp/vm")          # doctest: +SKIP
>>> a.kernel_version, a.disk_bytes       # doctest: +SKIP
('6.1.0-56-cloud-amd64', 15234567)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolMissing, VMError
from ..messages import t

__all__ = ["BENCH", "BENCH_SOURCE", "KERNEL_PACKAGE", "READY", "VMAssets", "build_assets", "compile_bench"]

KERNEL_PACKAGE = "linux-image-cloud-amd64"
READY = "VMCMP-READY"  # marker printed once the workload is up, inside the VM and the container
BENCH = "VMCMP-BENCH"

# The same source is compiled once and run natively, in the container and in the VM.
BENCH_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
/* Sieve of Eratosthenes, repeated: integer and memory work, no I/O, no syscalls inside the loop. */
static unsigned char sieve[1 << 20];
int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 10, reps = argc > 2 ? atol(argv[2]) : 3;
    long long best = -1;
    uint64_t total = 0;
    for (long rep = 0; rep < reps; rep++) {  /* report the fastest repetition: least disturbed */
        struct timespec a, b;
        total = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long r = 0; r < rounds; r++) {
            for (long i = 0; i < (long)sizeof sieve; i++) sieve[i] = 1;
            for (long i = 2; i * i < (long)sizeof sieve; i++)
                if (sieve[i]) for (long j = i * i; j < (long)sizeof sieve; j += i) sieve[j] = 0;
            for (long i = 2; i < (long)sizeof sieve; i++) total += sieve[i];
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        long long ns = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        if (best < 0 || ns < best) best = ns;
    }
    printf("VMCMP-BENCH ns=%lld primes=%llu\n", best, (unsigned long long)(rounds ? total / rounds : 0));
    return 0;
}
"""

# /init of the initramfs: print the ready marker (with a nonce the host put on the kernel command
# line, so the host knows the line came from this guest), then obey commands read from the console.
INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
export PATH=/bin
stty -echo 2>/dev/null
id=none
for w in $(cat /proc/cmdline); do case "$w" in vmcmp.id=*) id="${w#vmcmp.id=}";; esac; done
hv=$(dmesg | grep -o 'Hypervisor detected: [A-Za-z]*' | cut -d' ' -f3)
echo "VMCMP-READY id=$id kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime) hypervisor=${hv:-none}"
while read -r cmd arg; do
  case "$cmd" in
    bench) /bench $arg ;;
    off) break ;;
  esac
done
poweroff -f
"""
_APPLETS = ("sh", "mount", "cat", "cut", "uname", "dmesg", "grep", "stty", "poweroff", "reboot")


@dataclass(frozen=True)
class VMAssets:
    """Paths of the built files, and what they are."""

    kernel: Path
    kernel_version: str
    kernel_package: str
    initramfs: Path
    bench: Path | None
    bench_compiler: str

    @property
    def disk_bytes(self) -> int:
        """What the VM needs on disk to boot: kernel + initramfs (the benchmark is inside it)."""
        return self.kernel.stat().st_size + self.initramfs.stat().st_size

    def __repr__(self) -> str:
        return f"<VMAssets kernel={self.kernel_version!r} disk={self.disk_bytes / 2**20:.1f} MiB>"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _is_static_elf(data: bytes) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP (dynamic loader) header."""
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    for i in range(phnum):
        if int.from_bytes(data[phoff + i * phentsize: phoff + i * phentsize + 4], "little") == 3:
            return False
    return True


def _static_busybox() -> bytes:
    seen: list[str] = []
    for cand in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if cand and cand not in seen and Path(cand).exists():
            seen.append(cand)
            data = Path(cand).read_bytes()
            if _is_static_elf(data):
                return data
    raise ToolMissing("vm.busybox_missing")


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _download(package: str, into: Path) -> Path:
    """``apt-get download`` one package into ``into``; one clear error if that is impossible."""
    if not shutil.which("apt-get"):
        raise VMError("vm.kernel_download", package=package, detail="apt-get not found")
    try:
        r = _run(["apt-get", "download", package], cwd=into)
    except subprocess.TimeoutExpired as e:
        raise VMError("vm.kernel_download", package=package, detail="timeout") from e
    debs = sorted(into.glob(f"{package}_*.deb"))
    if r.returncode != 0 or not debs:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("E:")] or r.stderr.splitlines()
        raise VMError("vm.kernel_download", package=package, detail=(lines[0] if lines else "?")[:160])
    return debs[-1]


def _deb_has_kernel(deb: Path) -> bool:
    r = _run(["dpkg-deb", "-c", str(deb)])
    return "/boot/vmlinuz-" in r.stdout


def _fetch_kernel(kdir: Path, package: str, log: Callable[[str], None]) -> dict[str, str]:
    """Download the kernel package (following a meta-package to its real image) and keep vmlinuz."""
    with tempfile.TemporaryDirectory(dir=kdir) as tmp:
        work = Path(tmp)
        log(t("vm.p.kernel_fetch", package=package))
        deb = _download(package, work)
        if not _deb_has_kernel(deb):  # a meta-package: its Depends names the versioned image
            deps = _run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout
            real = next((d.strip().split()[0] for d in deps.split(",") if d.strip().startswith("linux-image-")), "")
            if not real:
                raise VMError("vm.kernel_download", package=package, detail="no linux-image dependency")
            log(t("vm.p.kernel_fetch", package=real))
            deb = _download(real, work)
        # Only ./boot/vmlinuz-* is needed: stream the data tar rather than `dpkg-deb -x` everything.
        out = work / "x"
        out.mkdir()
        data = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        tar = _run_tar(data, out)
        if tar != 0:
            raise VMError("vm.kernel_download", package=deb.name, detail="dpkg-deb/tar failed")
        found = sorted(out.glob("boot/vmlinuz-*"))
        if not found:
            raise VMError("vm.kernel_download", package=deb.name, detail="no vmlinuz inside")
        version = found[0].name.removeprefix("vmlinuz-")
        target = kdir / found[0].name
        shutil.move(str(found[0]), target)
        meta = {"file": target.name, "version": version, "package": deb.name.removesuffix(".deb"),
                "sha256": _sha(target.read_bytes())}
        (kdir / "kernel.json").write_text(json.dumps(meta, indent=1))
        return meta


def _run_tar(data: subprocess.Popen[bytes], out: Path) -> int:
    tar = subprocess.run(["tar", "-x", "-C", str(out), "--wildcards", "./boot/vmlinuz-*"],
                         stdin=data.stdout, capture_output=True, timeout=300, check=False)
    if data.stdout:
        data.stdout.close()
    return max(tar.returncode, data.wait())


def _cached_kernel(kdir: Path) -> dict[str, str] | None:
    try:
        meta = json.loads((kdir / "kernel.json").read_text())
        return meta if (kdir / meta["file"]).is_file() else None
    except (OSError, ValueError, KeyError):
        return None


def compile_bench(cache: Path, log: Callable[[str], None] | None = None) -> tuple[Path | None, str]:
    """The benchmark as a static binary, keyed by source and compiler: one built before (the course image
    seeds the host's), else compiled now; (None, '') with neither."""
    log = log or (lambda _s: None)
    cache.mkdir(parents=True, exist_ok=True)
    for cc, flags in (("musl-gcc", ["-static", "-O2"]), ("gcc", ["-static", "-O2"])):
        out = cache / f"bench-{_sha((BENCH_SOURCE + cc).encode())}"
        if out.is_file():  # built before, here or (the course image's) by the host that built the image
            return out, cc
        if not shutil.which(cc):
            continue
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            src = Path(tmp) / "bench.c"
            src.write_text(BENCH_SOURCE)
            r = _run([cc, *flags, "-o", str(Path(tmp) / "bench"), str(src)], timeout=120)
            if r.returncode != 0:
                log(t("vm.cc_failed", detail=(r.stderr.strip().splitlines() or ["?"])[-1][:160]))
                continue
            shutil.move(str(Path(tmp) / "bench"), out)
        log(t("vm.p.bench_ok", kib=out.stat().st_size // 1024, cc=cc))
        return out, cc
    log(t("vm.cc_missing"))
    return None, ""


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive (what the kernel unpacks as initramfs); deterministic, no tool needed."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        nb = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0)
        out.write(b"070701" + "".join(f"{v:08X}" for v in fields).encode() + nb)
        out.write(b"\0" * (-(110 + len(nb)) % 4) + data + b"\0" * (-len(data) % 4))
    return out.getvalue()


def _build_initramfs(cache: Path, busybox: bytes, bench: Path | None) -> Path:
    bench_bytes = bench.read_bytes() if bench else b""
    key = _sha(busybox + INIT_SCRIPT.encode() + bench_bytes)
    out = cache / f"initramfs-{key}.cpio.gz"
    if out.is_file():
        return out
    entries: list[tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys")]
    entries.append(("bin/busybox", 0o100755, busybox))
    entries += [(f"bin/{a}", 0o120777, b"busybox") for a in _APPLETS]
    if bench:
        entries.append(("bench", 0o100755, bench_bytes))
    entries.append(("init", 0o100755, INIT_SCRIPT.encode()))
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(_cpio(entries), 6, mtime=0))
    tmp.replace(out)
    for old in cache.glob("initramfs-*.cpio.gz"):  # earlier builds; a running qemu has its copy
        if old != out:
            old.unlink(missing_ok=True)
    return out


def build_assets(cache_dir: str | Path, *, package: str = KERNEL_PACKAGE,
                 log: Callable[[str], None] | None = print) -> VMAssets:
    """Build (or find, when already built) the kernel, initramfs and benchmark under ``cache_dir``.

    Idempotent: the kernel is downloaded once, the other files are named by a hash of their inputs.
    """
    say = log or (lambda _s: None)
    cache = Path(cache_dir)
    kdir = cache / "kernel"
    kdir.mkdir(parents=True, exist_ok=True)
    meta = _cached_kernel(kdir)
    fresh = meta is None
    if meta is None:
        meta = _fetch_kernel(kdir, package, say)
    kernel = kdir / meta["file"]
    if fresh:
        say(t("vm.p.kernel_ok", version=meta["version"], mib=f"{kernel.stat().st_size / 2**20:.1f}"))
    bench, cc = compile_bench(cache, say)
    initramfs = _build_initramfs(cache, _static_busybox(), bench)
    assets = VMAssets(kernel=kernel, kernel_version=meta["version"], kernel_package=meta["package"],
                      initramfs=initramfs, bench=bench, bench_compiler=cc)
    say(t("vm.p.cached", path=cache) if not fresh else t("vm.p.initramfs_ok",
                                                          kib=initramfs.stat().st_size // 1024))
    return assets
