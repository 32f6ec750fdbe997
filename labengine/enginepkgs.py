"""The lab's Docker Engine binaries: Debian's newest packages, fetched with apt's own tools into the
lab account's cache (no root, nothing installed system-wide), or the host's engine as a fallback.

The pins and the fallback rule live in ``labengine/engine.toml``. A private apt tree (own ``Dir::Etc``,
``Dir::State``, ``Dir::Cache``) downloads the packages; apt checks the archive's signature with the
host's Debian keyring. ``dpkg-deb -x`` unpacks them. A second call with the same pins downloads
nothing: the unpacked tree and ``current.json`` say what is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from labcore.errors import LabFailure
from labcore.proc import engine_cache_dir

__all__ = ["EngineBinaries", "PINS_FILE", "cache_dir", "ensure", "host_engine", "load_pins"]

PINS_FILE = Path(__file__).with_name("engine.toml")
HOST_RUNC = "/usr/sbin/runc"
# What the lab needs from each tree (relative to its root).
NEEDED = ("usr/sbin/dockerd", "usr/bin/containerd", "usr/bin/containerd-shim-runc-v2", "usr/bin/docker",
          "usr/bin/rootlesskit")


@dataclass(frozen=True)
class EngineBinaries:
    """Where the engine's programs are and where they came from."""

    root: str  # "/" for the host's own packages, else the unpacked tree
    version: str  # the docker.io package version
    source: str  # one line for ./lab status, e.g. "Debian unstable (pinned)"
    packages: dict[str, str]

    def path(self, rel: str) -> str:
        return str(Path(self.root) / rel)

    @property
    def dockerd(self) -> str:
        return self.path("usr/sbin/dockerd")

    @property
    def docker(self) -> str:
        return self.path("usr/bin/docker")

    @property
    def plugins(self) -> str:
        return self.path("usr/libexec/docker/cli-plugins")

    def search_path(self) -> list[str]:
        """Directories that must come first on PATH for dockerd (it finds containerd, the shim,
        docker-proxy and rootlesskit there)."""
        if self.root == "/":
            return []
        return [self.path("usr/bin"), self.path("usr/sbin"), self.path("usr/lib/containerd")]


def load_pins() -> dict[str, object]:
    return tomllib.loads(PINS_FILE.read_text())


def cache_dir() -> Path:
    return engine_cache_dir()


def _version_ge(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "ge", b], check=False).returncode == 0


def _dpkg_version(pkg: str) -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def host_engine() -> EngineBinaries | None:
    """The host's own docker.io (Debian 12: 20.10), if installed with rootlesskit."""
    if not (Path("/usr/sbin/dockerd").exists() and shutil.which("rootlesskit")):
        return None
    release = ""
    try:
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                       if "=" in line).get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    version = _dpkg_version("docker.io")
    return EngineBinaries("/", version, f"the host's docker.io {version} ({release or 'this system'})",
                          {"docker.io": version, "rootlesskit": _dpkg_version("rootlesskit")})


class _Apt:
    """apt-get and apt-cache over a private tree: the host's sources and state are never touched."""

    def __init__(self, top: Path, mirror: str, keyring: str, suite: str, arch: str | None = None) -> None:
        self.top = top
        for d in ("etc/apt/preferences.d", "etc/apt/apt.conf.d", "etc/apt/sources.list.d",
                  "state/lists/partial", "cache/archives/partial"):
            (top / d).mkdir(parents=True, exist_ok=True)
        (top / "state/status").touch()
        (top / "etc/apt/sources.list").write_text(f"deb [signed-by={keyring}] {mirror} {suite} main\n")
        self.opts = [f"-oDir::Etc={top}/etc/apt", f"-oDir::State={top}/state", f"-oDir::Cache={top}/cache",
                     f"-oDir::State::status={top}/state/status", "-oDebug::NoLocking=1",
                     "-oAcquire::Languages=none", "-oAcquire::Retries=2", "-oAcquire::http::Timeout=20"]
        if arch:  # another architecture's packages (the course image for arm64): only these are listed
            self.opts += [f"-oAPT::Architecture={arch}", f"-oAPT::Architectures={arch}"]
        if os.geteuid() != 0:  # apt would try to drop to _apt, which an ordinary account cannot
            import pwd

            self.opts.append(f"-oAPT::Sandbox::User={pwd.getpwuid(os.geteuid()).pw_name}")

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, *self.opts, *args], capture_output=True, text=True, cwd=cwd,
                              timeout=300, check=False)

    def versions(self, pkg: str) -> list[str]:
        out = self.run("apt-cache", "madison", pkg).stdout
        return [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]


def _choose(apt: _Apt, pins: dict[str, str], minimum: str) -> tuple[dict[str, str], bool]:
    """Package -> version in this suite, and whether all are the pinned ones."""
    chosen, pinned = {}, True
    for pkg, want in pins.items():
        have = apt.versions(pkg)
        if not have:
            raise LabFailure(f"{pkg} is not in this suite")
        if want in have:
            chosen[pkg] = want
        else:
            chosen[pkg], pinned = have[0], False
    if not _version_ge(chosen["docker.io"], minimum):
        raise LabFailure(f"docker.io {chosen['docker.io']} is older than {minimum}")
    return chosen, pinned


def _unpack(debs: list[Path], into: Path, run_check: bool = True) -> None:
    """Unpack, then run dockerd --version (not for another architecture: its binaries need that
    architecture's C library, which only the image built for it has)."""
    tmp = into.with_name(into.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True, capture_output=True)
    missing = [rel for rel in NEEDED if not (tmp / rel).exists()]
    if missing:
        raise LabFailure(f"the packages lack {', '.join(missing)}")
    # The binaries must run on this system's C library (unstable's runc does not on Debian 12).
    r = subprocess.run([str(tmp / "usr/sbin/dockerd"), "--version"], capture_output=True, text=True) \
        if run_check else None
    if r and r.returncode != 0:
        raise LabFailure(f"dockerd from these packages does not run here: {(r.stderr or r.stdout).strip()[:120]}")
    shutil.rmtree(into, ignore_errors=True)
    tmp.rename(into)


def _fetch(cache: Path, suite: str, conf: dict[str, object], arch: str | None = None) -> EngineBinaries:
    pins: dict[str, str] = dict(conf["pins"])  # type: ignore[arg-type,call-overload]
    apt = _Apt(cache / "apt" / suite, str(conf["mirror"]), str(conf["keyring"]), suite, arch)
    r = apt.run("apt-get", "update")
    if r.returncode != 0 or "NO_PUBKEY" in r.stderr or "not signed" in r.stderr:
        raise LabFailure(f"apt-get update failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:160]}")
    chosen, pinned = _choose(apt, pins, str(conf["min_version"]))
    debs_dir = cache / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    r = apt.run("apt-get", "download", *(f"{p}={v}" for p, v in chosen.items()), cwd=debs_dir)
    if r.returncode != 0:
        raise LabFailure(f"apt-get download failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:160]}")
    debs = [next(debs_dir.glob(f"{p}_{v.split(':')[-1]}_*.deb")) for p, v in chosen.items()]
    root = cache / chosen["docker.io"]
    _unpack(debs, root, run_check=arch is None)
    for deb in debs:
        deb.unlink()
    what = "pinned" if pinned else f"the pinned versions are gone from {suite}; its current ones"
    return EngineBinaries(str(root), chosen["docker.io"], f"Debian {suite} ({what})", chosen)


def _recorded(cache: Path) -> EngineBinaries | None:
    try:
        data = json.loads((cache / "current.json").read_text())
        found = EngineBinaries(**data)
    except (OSError, ValueError, TypeError):
        return None
    return found if all(Path(found.path(rel)).exists() for rel in NEEDED) else None


def ensure(say: Callable[[str], None], cache: Path | None = None, arch: str | None = None) -> EngineBinaries:
    """The engine to run: the pinned packages (fetched once), else the fallback rule of engine.toml.
    ``arch`` (a Debian architecture, e.g. ``arm64``): that architecture's packages, for the course
    image, into their own ``cache``; no fallback to the host's engine then."""
    cache = cache or cache_dir()
    conf = load_pins()
    pins: dict[str, str] = dict(conf["pins"])  # type: ignore[arg-type,call-overload]
    have = _recorded(cache)
    if have and have.packages == pins:
        return have
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o700)
    reasons = []
    for suite in conf["suites"]:  # type: ignore[attr-defined]
        say(f"fetching Docker Engine packages from Debian {suite} (about 80 MB, once)")
        try:
            found = _fetch(cache, str(suite), conf, arch)
        except (LabFailure, OSError, subprocess.SubprocessError, StopIteration) as e:
            reasons.append(f"{suite}: {e}")
            continue
        (cache / "current.json").write_text(json.dumps(asdict(found), indent=1))
        if not found.source.endswith("(pinned)"):
            say(f"using {found.source}: docker.io {found.version}")
        return found
    why = "; ".join(reasons)
    if have:
        say(f"the pinned engine packages could not be fetched ({why}); using the copy fetched earlier, "
            f"docker.io {have.version}")
        return have
    host = host_engine() if arch is None else None
    if host:
        say(f"the newer engine could not be fetched ({why}); falling back to {host.source}. "
            "Check access to deb.debian.org and run ./lab up again to get the current engine.")
        return host
    raise LabFailure(f"No Docker Engine available ({why}), and the host has none: check access to "
                     "deb.debian.org, or install docker.io and rootlesskit as root, then run ./lab up again.")
