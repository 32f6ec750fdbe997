"""Build the course image offline: a Debian root file system (mmdebstrap, Debian's packages only)
with the course's Python environment (PyPI), the course (chapters, the labs' student versions,
``kernel_ext``, ``labctl``), the lab's rootless engine (Debian's packages, as ``./lab up`` runs it)
and the course images preloaded in its upstream registry. No base image from any registry.

The image's Python packages are wheels for the image's platform, fetched by the host's pip and unpacked
into the stage by ``installer`` (PyPA's wheel installer), byte-compiled by the host's Python, which must be the
image's (Debian 12's 3.11): nothing runs pip inside the new root, so a foreign architecture's build does not run pip
under emulation (it took 3 of the arm64 build's 7.5 minutes on a quiet machine).

The result is a ``docker load``-able archive (one layer, the root file system as mmdebstrap wrote
it) with OCI labels: the image's version, the engine's version, the course's commit.

What never goes in: ``labs/source`` and ``labs/src`` (the solutions and hidden tests), ``.git``,
the tests, the bench, the instructors' sources. ``FORBIDDEN`` is checked against the final layer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from labctl.images import DEBIAN_SOURCES
from grader.course import LABS
from labcore import safefs
from labcore.errors import LabFailure
from labcore.state import REPO, LabPaths

__all__ = ["ARCHIVE", "FORBIDDEN", "PACKAGES", "archive_name", "build", "course_files", "host_arch", "image_labels",
           "save"]

ARCHIVE = "course-image.tar"  # under <lab home>/image/ (the host's architecture; another's: archive_name)
# Debian architecture -> qemu-user-static's binfmt_misc entry (a foreign build runs the image's programs)
QEMU = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}
NAME = "dockerlab/course"
# In the image: the course (root's, read-only to the learner), its venv, the engine, what a new
# volume is seeded with.
OPT = "/opt/dockerlab"
LEARNER, LEARNER_UID = "learner", 1000
VENV = f"{OPT}/.venv"
PY = "3.11"  # bookworm's python3: the image's
# Debian architecture -> the wheels' machine; bookworm's glibc is 2.36 (manylinux_2_36 at most)
WHEEL_MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
GLIBC_MINOR = 36
SUBID = "100000:65536"  # the inner engine's containers' uids; Debian images need 0..65534 mapped
# Debian packages in the image: the lab's runtime (as `./lab` installs on a host) minus what only a
# host needs (the compilers, Chromium, mmdebstrap); chapter 2's qemu: VM_PACKAGES.
PACKAGES = ["python3", "python3-venv", "docker-registry", "uidmap", "slirp4netns", "iproute2", "iptables",
            "runc", "tini", "util-linux", "procps", "graphviz", "fonts-wqy-microhei", "ca-certificates",
            "busybox-static", "curl", "less", "bash-completion", "libcap2-bin"]
# Chapter 2's virtual machine (kernel_ext.vmcompare): its kernel and benchmark are amd64's, built by the host
# (.lab/vm) and seeded into a new volume; qemu finds /dev/kvm or runs TCG. Another architecture's image has
# no VM part (LAB_NO_VM: chapter 2 says so and measures the container side).
VM_ARCH = "amd64"
VM_PACKAGES = ["qemu-system-x86"]
# Course files: tracked files under these, minus FORBIDDEN.
INCLUDE = ("labcore/", "labengine/", "kernel_ext/", "labs/", "grader/", "labctl/", "courseimage/", "images/",
           "notebooks/", "README.md",
           "pyproject.toml", "lab")
# labs/README.md is the instructors' (the grading workflow, the hidden tests' markers).
FORBIDDEN = ("labs/source/", "labs/src/", "labs/README.md", ".git/", "tests/", "notebooks/src/", "bench/", "deploy/")
# nbgrader's markers of what the student version leaves out: in no file of the course (nbgrader's own
# package in the venv defines them, and is not the course).
MARKERS = tuple(b"BEGIN " + what for what in (b"SOLUTION", b"HIDDEN TESTS"))  # not spelt out: this file is in it


def host_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def archive_name(arch: str | None = None) -> str:
    """The image archive's name under <lab home>/image/: ARCHIVE for the host's architecture."""
    return ARCHIVE if arch in (None, host_arch()) else f"course-image-{arch}.tar"


def _check_emulation(arch: str) -> None:
    """A foreign build runs the new root's programs (dpkg's scripts, pip) through qemu-user-static."""
    entry = Path("/proc/sys/fs/binfmt_misc") / QEMU.get(arch, f"qemu-{arch}")
    text = entry.read_text() if entry.exists() else ""
    flags = next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags:")), "")
    if arch not in QEMU or not text.startswith("enabled") or "F" not in flags or not shutil.which("arch-test"):
        raise LabFailure(f"Building the course image for {arch} here needs emulation: as root, install "
                         f"qemu-user-static, binfmt-support and arch-test, mount binfmt_misc on "
                         f"/proc/sys/fs/binfmt_misc and run 'update-binfmts --enable {entry.name}'.")


def _say_default(msg: str) -> None:
    print(f"[image] {msg}", flush=True)


def course_commit() -> str:
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(REPO), "rev-parse", "HEAD"],
                       capture_output=True, text=True)
    commit = r.stdout.strip() if r.returncode == 0 else "unknown"
    dirty = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(REPO), "status", "--porcelain",
                            "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def course_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def course_files() -> list[str]:
    """The tracked files that go into the image (relative to the clone), solutions excluded."""
    out = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                         check=True).stdout
    files = [f for f in out.decode().split("\0") if f]
    return sorted(f for f in files if f.startswith(INCLUDE) and not f.startswith(FORBIDDEN)
                  and (REPO / f).is_file())


def _requirements() -> list[str]:
    """The course's runtime dependencies (pyproject's, not the dev extras), and JupyterHub's
    ``jupyterhub-singleuser`` for the image's notebook role in a Kubernetes pod (``courseimage.pod``)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    hub = [r for r in project["optional-dependencies"]["classroom"] if r.startswith("jupyterhub>")]
    return [*project["dependencies"], *hub]


def image_labels(engine_version: str) -> dict[str, str]:
    commit = course_commit()
    return {
        "org.opencontainers.image.title": "Docker Lab course",
        "org.opencontainers.image.description": "The Docker Lab course (JupyterLab, a rootless Docker Engine, "
                                                "the course registries) in one image",
        "org.opencontainers.image.version": f"{course_version()}+{commit[:12]}",
        "org.opencontainers.image.revision": commit,
        "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "org.dockerlab.engine.version": engine_version,
        "org.dockerlab.course.commit": commit,
    }


def _stage(stage: Path, lab: LabPaths, engine_root: Path, engine_version: str, arch: str) -> None:
    """Everything the image adds to Debian, laid out as it will be under /."""
    shutil.rmtree(stage, ignore_errors=True)
    opt = stage / OPT.lstrip("/")
    for rel in course_files():
        dest = opt / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    (opt / "requirements.txt").write_text("\n".join(_requirements()) + "\n")
    _install_packages(stage, stage.with_name("build-tmp"), arch)
    # The course images, as the lab's upstream registry stores them (the hashes make ./lab up skip the build).
    upstream = lab.home / "registry" / "upstream"
    if not (upstream / "docker" / "registry" / "v2" / "repositories").is_dir():
        raise LabFailure(f"The course registry {upstream} is empty: run ./lab up --no-jupyter first.")
    shutil.copytree(upstream, opt / "seed" / "registry" / "upstream", symlinks=True)
    if arch == VM_ARCH:
        _stage_vm(lab.home / "vm", opt / "seed" / "vm")
    release = lab.home / "grading" / "release"
    if not all((release / lab_ / f"{lab_}.ipynb").is_file() for lab_ in LABS):
        raise LabFailure(f"The labs' student versions are missing in {release}: run ./lab grade generate first.")
    shutil.copytree(release, opt / "seed" / "grading" / "release")
    # The engine: the same unpacked Debian packages ./lab up runs, where the learner's engine cache
    # (a symlink the entrypoint makes) finds them; current.json names their place in the image.
    eng = opt / "engine"
    shutil.copytree(engine_root, eng / engine_root.name, symlinks=True)
    cur = json.loads((engine_root.parent / "current.json").read_text())
    cur["root"] = f"{OPT}/engine/{engine_root.name}"
    cur["source"] = f"{cur['source']}, in the course image"
    (eng / "current.json").write_text(json.dumps(cur, indent=1))
    if cur["version"] != engine_version:
        raise LabFailure(f"The engine cache says {cur['version']}, the lab runs {engine_version}.")


def _host_python_is_the_images() -> bool:
    return f"{sys.version_info.major}.{sys.version_info.minor}" == PY


def _install_packages(stage: Path, build_tmp: Path, arch: str) -> None:
    """The course's Python packages into ``stage`` + VENV, for ``arch``: the host's pip downloads binary wheels
    for the image's platform at the versions this clone's venv was tested with (``pip freeze`` as constraints),
    ``installer`` unpacks them with the image's interpreter in the scripts' first line."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    shutil.rmtree(build_tmp, ignore_errors=True)
    wheels = build_tmp / "wheels"
    wheels.mkdir(parents=True)
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout
    (build_tmp / "constraints.txt").write_text(freeze)
    (build_tmp / "requirements.txt").write_text("\n".join([*_requirements(), "pip"]) + "\n")
    machine = WHEEL_MACHINE[arch]
    platforms = [f"manylinux_2_{v}_{machine}" for v in range(GLIBC_MINOR, 16, -1)]
    platforms += [f"manylinux2014_{machine}", f"linux_{machine}"]
    # isolated: no pip configuration of the account's (an index of someone else's) decides what goes in
    argv = [sys.executable, "-m", "pip", "--isolated", "download", "-q", "--disable-pip-version-check",
            "--cert", _ca_bundle(), "--only-binary=:all:",
            "--implementation", "cp", "--python-version", PY, "--abi", f"cp{PY.replace('.', '')}",
            *(f"--platform={p}" for p in platforms), "-d", str(wheels),
            "-c", str(build_tmp / "constraints.txt"), "-r", str(build_tmp / "requirements.txt")]
    r = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise LabFailure(f"pip could not fetch the course's wheels for {arch} ({' / '.join(tail)}): check access to "
                         "PyPI, then build again.")
    site = f"{VENV}/lib/python{PY}/site-packages"
    scheme = {"purelib": site, "platlib": site, "scripts": f"{VENV}/bin", "data": VENV,
              "headers": f"{VENV}/include/site/python{PY}"}
    # the host's compile() writes the image's bytecode (the same Python: checked in build())
    destination = SchemeDictionaryDestination(scheme, interpreter=f"{VENV}/bin/python", script_kind="posix",
                                              bytecode_optimization_levels=(0,), destdir=str(stage))
    for wheel in sorted(wheels.glob("*.whl")):
        with WheelFile.open(wheel) as source:
            install(source, destination, {"INSTALLER": b"pip\n"})


def _stage_vm(vm: Path, seed: Path) -> None:
    """Chapter 2's kernel (and its kernel.json), benchmark and initramfs, exactly the ones the lab's prepared
    VM uses (``build_assets``), as regular files."""
    from kernel_ext.errors import LabError
    from kernel_ext.vmcompare import build_assets

    try:
        assets = build_assets(vm, log=None)
    except LabError as e:
        raise LabFailure(f"Chapter 2's virtual machine is not prepared in {vm} ({e}): run ./lab up --no-jupyter, "
                         "then build again.") from None
    if assets.bench is None:
        raise LabFailure("Chapter 2's benchmark was not compiled (no musl-gcc or gcc): install musl-tools, then "
                         "build again.")
    for f in (assets.kernel, assets.kernel.with_name("kernel.json"), assets.bench, assets.initramfs):
        if not stat.S_ISREG(os.lstat(f).st_mode):
            raise LabFailure(f"{f} is not a regular file: run ./lab up --no-jupyter again.")
        dest = seed / f.relative_to(vm)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
        shutil.copymode(f, dest)


def _ca_bundle() -> str:
    for f in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if f and os.path.isfile(f):
            return f
    raise LabFailure("No CA bundle for PyPI: install ca-certificates, then build again.")


def _hooks(stage: Path, engine_root: str) -> list[str]:
    return [
        f'--customize-hook=sync-in {stage} /',
        # sync-in keeps the stage's owner and mode (the account's, 0700) on the directories it shares with /
        '--customize-hook=chroot "$1" chown root:root /opt && chmod 0755 "$1"/opt',
        f'--customize-hook=chroot "$1" chown -R root:root {OPT}',
        # the venv around the packages the stage holds (its python is the image's python3)
        f'--customize-hook=chroot "$1" python3 -m venv --without-pip {VENV}',
        f'--customize-hook=chroot "$1" chmod -R go-w,a+rX {OPT}',
        # the engine's CLI on PATH (the pod's engine probe, a terminal); the kernel's own comes first anyway
        f'--customize-hook=chroot "$1" ln -s {OPT}/engine/{engine_root}/usr/bin/docker /usr/local/bin/docker',
        f'--customize-hook=chroot "$1" useradd --create-home --uid {LEARNER_UID} --shell /bin/bash {LEARNER}',
        # File capabilities instead of setuid root (as Fedora and Arch ship them): newuidmap then writes
        # the map as the learner with CAP_SETUID alone, so the container needs no CAP_SYS_ADMIN.
        '--customize-hook=chroot "$1" chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap',
        '--customize-hook=chroot "$1" setcap cap_setuid=ep /usr/bin/newuidmap',
        '--customize-hook=chroot "$1" setcap cap_setgid=ep /usr/bin/newgidmap',
        f'--customize-hook=echo "{LEARNER}:{SUBID}" > "$1"/etc/subuid',
        f'--customize-hook=echo "{LEARNER}:{SUBID}" > "$1"/etc/subgid',
        '--customize-hook=rm -rf "$1"/root/.cache "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
    ]


def build(lab: LabPaths, say: Callable[[str], None] = _say_default, arch: str | None = None) -> Path:
    """Build the image archive ``<lab home>/image/course-image.tar`` (``arch``, a Debian architecture
    other than the host's: ``course-image-<arch>.tar``, every program of it run under qemu-user-static
    while it is built); returns its path."""
    from labengine import enginepkgs
    from labctl.images import MMDEBSTRAP_ARGS

    if not _host_python_is_the_images():
        # pip chooses the wheels' dependencies by the markers of the Python it runs on, and compile() writes
        # bytecode for its own version: a host whose python3 is not the image's would build a broken image
        raise LabFailure(f"The course image's Python is Debian 12's {PY}; this host's is "
                         f"{sys.version_info.major}.{sys.version_info.minor}: build the image on Debian 12.")
    if not shutil.which("mmdebstrap"):
        raise LabFailure("mmdebstrap is missing: run 'sudo ./lab setup' once (it installs it).")
    native = host_arch()
    arch = arch or native
    foreign = arch != native
    if foreign:
        _check_emulation(arch)
        binaries = enginepkgs.ensure(say, cache=enginepkgs.cache_dir().with_name(f"engine-{arch}"), arch=arch)
    else:
        binaries = enginepkgs.ensure(say)
    if binaries.root == "/":
        raise LabFailure("The lab runs the host's own engine, which cannot go into the image: "
                         "check access to deb.debian.org and run ./lab up again.")
    top = lab.home / "image"
    work = top / arch if foreign else top  # a foreign build has its own stage (both can run at once)
    work.mkdir(parents=True, exist_ok=True)
    stage = work / "stage"
    t0 = time.monotonic()
    labels = image_labels(binaries.version)  # the commit whose files are staged now
    _stage(stage, lab, Path(binaries.root), binaries.version, arch)
    say(f"staged the course ({len(course_files())} files), its Python packages for {arch}, the course registry and "
        f"the engine {binaries.version} in {time.monotonic() - t0:.0f} s")
    rootfs = work / "rootfs.tar"
    log = lab.logs / ("course-image-mmdebstrap.log" if not foreign else f"course-image-{arch}-mmdebstrap.log")
    # the host image build's options (minbase, no docs, no /dev in the tar), plus our packages and hooks
    argv = ["mmdebstrap", *([f"--arch={arch}"] if foreign else []), *MMDEBSTRAP_ARGS,
            f"--include={','.join(PACKAGES + (VM_PACKAGES if arch == VM_ARCH else []))}",
            *_hooks(stage, Path(binaries.root).name),
            "bookworm", str(rootfs), *DEBIAN_SOURCES]
    say(f"mmdebstrap: Debian bookworm ({arch}) + {len(PACKAGES)} packages, then the stage (log: {log})")
    t1 = time.monotonic()
    with safefs.open_private(log, "wb") as out:  # the account's alone, like the lab's other logs
        os.fchmod(out.fileno(), 0o600)  # an earlier build's, made 0644
        r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise LabFailure(f"mmdebstrap could not build the course image's root file system (log: {log}): "
                         "check access to deb.debian.org and PyPI, and free disk space, then try again.")
    say(f"root file system: {rootfs.stat().st_size / 2**20:.0f} MiB in {time.monotonic() - t1:.0f} s")
    _check_layer(rootfs)
    archive = top / archive_name(arch)
    _write_archive(rootfs, archive, labels, arch, foreign)
    rootfs.unlink()
    shutil.rmtree(stage, ignore_errors=True)
    shutil.rmtree(stage.with_name("build-tmp"), ignore_errors=True)
    say(f"image archive {archive} ({archive.stat().st_size / 2**20:.0f} MiB) in {time.monotonic() - t0:.0f} s")
    return archive


def _check_layer(rootfs: Path) -> None:
    """Refuse an image that holds a solution (or the git history)."""
    prefix = OPT.lstrip("/") + "/"
    marked = []
    with tarfile.open(rootfs) as tf:
        members: dict[str, tarfile.TarInfo] = {}
        for m in tf:
            name = m.name.removeprefix("./")
            members[name] = m
            rel = name[len(prefix):] if name.startswith(prefix) else None
            if rel is not None and m.isfile() and not rel.startswith((".venv/", "seed/registry/")):
                f = tf.extractfile(m)
                data = f.read() if f else b""
                if any(marker in data for marker in MARKERS):
                    marked.append(name)
    bad = [n for n in members if n.startswith(prefix) and n[len(prefix):].startswith(FORBIDDEN)] + marked
    if bad:
        raise LabFailure(f"The image would hold what learners must not see: {bad[:3]}")
    wrong = [f"{n} {oct(members[n].mode)} uid {members[n].uid}" for n, mode in (("tmp", 0o1777), ("opt", 0o755))
             if members[n].mode != mode or members[n].uid != 0]
    wrong += [n for n in ("usr/bin/newuidmap", "usr/bin/newgidmap")
              if "SCHILY.xattr.security.capability" not in members[n].pax_headers]
    if wrong:
        raise LabFailure(f"The image's root file system is not as built (modes, owners, file capabilities): {wrong}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def image_config(diff_id: str, labels: dict[str, str], arch: str = "amd64") -> dict[str, object]:
    tag = labels["org.opencontainers.image.version"]
    return {
        "architecture": arch,
        "os": "linux",
        "created": labels["org.opencontainers.image.created"],
        "config": {
            "User": f"{LEARNER}",
            "WorkingDir": f"/home/{LEARNER}",
            "Env": [f"PATH={OPT}/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    f"HOME=/home/{LEARNER}", f"LAB_HOME=/home/{LEARNER}/.lab", "LANG=C.UTF-8",
                    *(["LAB_NO_VM=1"] if arch != VM_ARCH else []), f"PYTHONPATH={OPT}", f"DOCKERLAB_IMAGE={tag}"],
            "Entrypoint": ["/usr/bin/tini", "--", f"{OPT}/.venv/bin/python", "-m", "courseimage.entrypoint"],
            "ExposedPorts": {"8888/tcp": {}},
            # The learner's home is a volume even if the command names none: the engine's data root
            # must not sit on the container's own overlay (overlay on overlay does not mount).
            "Volumes": {f"/home/{LEARNER}": {}},
            "StopSignal": "SIGTERM",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": labels["org.opencontainers.image.created"],
                     "created_by": "courseimage.build: mmdebstrap bookworm + the course (no base image)"}],
    }


def _write_archive(rootfs: Path, archive: Path, labels: dict[str, str], arch: str, foreign: bool) -> None:
    """A ``docker load`` archive (the format ``docker save`` writes): manifest.json, the config, one layer.
    Tagged ``<version>`` and ``latest``; another architecture's ``<version>-<arch>`` only (so loading it
    never replaces the host's image; the multi-architecture index names both)."""
    diff_id = _sha256(rootfs)
    config = json.dumps(image_config(diff_id, labels, arch), sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    version = labels["org.opencontainers.image.version"].split("+")[0]
    tags = [f"{NAME}:{version}-{arch}"] if foreign else [f"{NAME}:{version}", f"{NAME}:latest"]
    manifest = [{"Config": config_name, "RepoTags": tags,
                 "Layers": [f"{diff_id}/layer.tar"]}]
    tmp = archive.with_suffix(".part")
    with tarfile.open(tmp, "w") as tf:
        for name, data in ((config_name, config), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tf.addfile(info, io.BytesIO(data))
        tf.add(rootfs, arcname=f"{diff_id}/layer.tar")
    tmp.replace(archive)


def save(lab: LabPaths, out: Path, say: Callable[[str], None] = _say_default,
         arch: str | None = None) -> tuple[Path, str]:
    """The built archive, gzipped (``docker load -i`` reads it as is): the file and its sha256."""
    arch = arch or host_arch()
    archive = lab.home / "image" / archive_name(arch)
    if not archive.exists():
        raise LabFailure(f"No course image built yet for {arch}: run ./lab image build first.")
    if out.is_dir():
        out = out / f"dockerlab-course-{arch}.tar.gz"
    tmp = out.with_name(out.name + ".part")
    with open(archive, "rb") as src, open(tmp, "wb") as raw:
        # mtime 0 and no file name: the same archive gives the same bytes
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
            shutil.copyfileobj(src, gz, 1 << 20)
    tmp.replace(out)
    digest = _sha256(out)
    (out.with_name(out.name + ".sha256")).write_text(f"{digest}  {out.name}\n")
    return out, digest
