"""Course images: read the catalogue, build what changed, publish to the upstream registry.

Each build is identified by a content hash of everything that goes into it (catalogue entry,
build context, prepared inputs, the base's hash), stored as the label ``org.dockerlab.content``.
A build is skipped when the upstream registry already serves every tag with that label, so a
second ``./lab up`` asks the registry a few questions and builds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import tomllib

from labcore.distribution import RegistryError, image_config
from labcore.errors import LabFailure
from labcore.state import REPO

__all__ = ["CatalogueImage", "content_hashes", "load_catalogue", "publish", "registry_label", "stale"]

CATALOGUE = REPO / "images" / "catalogue.toml"
CONTENT_LABEL = "org.dockerlab.content"
SOURCE_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z: the time every build input carries
CONTEXT_FORM = 2  # how the build context is packed (_context_tar): a new form rebuilds every course image
DEBIAN_SOURCES = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
]
MMDEBSTRAP_ARGS = [
    "--variant=minbase", "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    # no device nodes in the tar: a rootless engine cannot make them (containers get their own /dev)
    "--skip=output/dev",
    "--aptopt=Acquire::Languages \"none\"",
    "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin \"$1\"/var/log/*.log",
]


@dataclass(frozen=True)
class CatalogueImage:
    name: str
    tags: tuple[str, ...]
    context: str
    prepare: str = ""
    base: str = ""
    buildargs: dict[str, str] = field(default_factory=dict)
    purpose: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}:{self.tags[0]}"

    @property
    def short(self) -> str:
        """The name as a learner types it: ``library/nginx`` -> ``nginx``."""
        return self.key.removeprefix("library/")


def load_catalogue(path: Path = CATALOGUE) -> list[CatalogueImage]:
    data = tomllib.loads(path.read_text())
    out = []
    for entry in data["image"]:
        entry = dict(entry)
        entry["tags"] = tuple(entry["tags"])
        out.append(CatalogueImage(**entry))
    return out


def _hash_tree(h: Any, root: Path) -> None:
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")


def content_hashes(images: list[CatalogueImage]) -> dict[str, str]:
    """``name:first-tag`` -> hash of everything that goes into that build."""
    out: dict[str, str] = {}
    by_ref = {f"{i.name}:{t}": i for i in images for t in i.tags}
    for img in images:
        h = hashlib.sha256()
        h.update(json.dumps([img.name, img.tags, img.context, img.prepare, img.base,
                             sorted(img.buildargs.items()), SOURCE_EPOCH, CONTEXT_FORM]).encode())
        _hash_tree(h, REPO / "images" / img.context)
        if img.prepare == "busybox":
            h.update(Path("/bin/busybox").read_bytes())
        if img.prepare == "rootfs":
            h.update(json.dumps([MMDEBSTRAP_ARGS, DEBIAN_SOURCES]).encode())
        if img.base:
            h.update(out[by_ref[img.base].key].encode())
        out[img.key] = h.hexdigest()[:24]
    return out


def registry_label(registry: str, name: str, tag: str) -> str | None:
    """The content label of ``name:tag`` in ``registry``, or None if the tag is not there."""
    try:
        config = image_config(registry, name, tag)
    except (RegistryError, KeyError, ValueError):
        return None
    labels = (config.get("config") or {}).get("Labels") or {}
    return labels.get(CONTENT_LABEL)


def _prepare(img: CatalogueImage, build: Path) -> None:
    if img.prepare == "hello":
        cc = ["musl-gcc"] if shutil.which("musl-gcc") else ["gcc"]
        subprocess.run([*cc, "-static", "-Os", "-s", "-o", str(build / "hello"), str(build / "hello.c")],
                       check=True)
    elif img.prepare == "busybox":
        shutil.copy2("/bin/busybox", build / "busybox")
    elif img.prepare == "rootfs":
        if not shutil.which("mmdebstrap"):
            raise LabFailure("mmdebstrap is missing: run ./lab up as root so it can install it.")
        log = build / "mmdebstrap.log"
        with open(log, "w") as out:
            r = subprocess.run(["mmdebstrap", *MMDEBSTRAP_ARGS, "bookworm", str(build / "rootfs.tar"),
                                *DEBIAN_SOURCES], stdout=out, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise LabFailure(f"mmdebstrap could not build the Debian root file system (log: {log}): "
                             "check access to deb.debian.org and free disk space, then run ./lab up again.")


def _context_tar(build: Path, home: Path) -> IO[bytes]:
    """The build context as a tar whose entries are owned by 0:0 with no names and carry SOURCE_EPOCH:
    the classic builder's ``COPY file:<hash>`` hashes each file's tar header, uid and gid included, so a
    context packed with the lab account's own uid (1000 on one machine, 1001 on another) gave each machine
    its own history lines and image ids, and the chapters' stored outputs held on one machine only."""
    f = tempfile.TemporaryFile(dir=home)
    with tarfile.open(fileobj=f, mode="w") as tar:
        for p in sorted(build.rglob("*")):
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(build)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = SOURCE_EPOCH
            if info.isfile():
                with open(p, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    f.seek(0)
    return f


def _build(client: Any, img: CatalogueImage, upstream: str, home: Path, digest: str) -> str:
    build = home / "build" / img.key.replace("/", "_").replace(":", "_")
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(REPO / "images" / img.context, build)
    _prepare(img, build)
    # Reproducible layers: COPY keeps file times, and a compiled binary's time would change the
    # compressed layer (and the sizes the chapters show) with every build.
    for f in [build, *build.rglob("*")]:
        os.utime(f, (SOURCE_EPOCH, SOURCE_EPOCH), follow_symlinks=False)
    args = dict(img.buildargs)
    if img.base:
        args["BASE"] = f"{upstream}/{img.base}"
    image_id = ""
    steps: list[str] = []  # each step's image: under the containerd store they stay as <none> images
    with _context_tar(build, home) as context:
        for chunk in client.api.build(fileobj=context, custom_context=True, rm=True, forcerm=True, decode=True,
                                      buildargs=args, network_mode="host", labels={CONTENT_LABEL: digest},
                                      pull=False):
            if "error" in chunk:
                raise LabFailure(_explain(chunk["error"], f"building {img.key}"))
            line = chunk.get("stream", "")
            if line.startswith("Step "):
                print(f"      {line.strip()[:110]}", file=sys.stderr, flush=True)
            if (line.startswith(" ---> ") and len(line.split()) == 2
                    and all(c in "0123456789abcdef" for c in line.split()[1])):
                steps.append(line.split()[1])
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    if not image_id:
        raise LabFailure(f"Building {img.key} produced no image; see the build output above.")
    shutil.rmtree(build, ignore_errors=True)
    _BUILD_STEPS.extend(steps)
    return image_id


def _epoch(created: str) -> int:
    """The engine's RFC 3339 ``Created`` (nanoseconds, Z) as whole Unix seconds."""
    import datetime as dt

    return int(dt.datetime.fromisoformat(created[:19]).replace(tzinfo=dt.timezone.utc).timestamp())


def _explain(error: str, doing: str) -> str:
    if "no space left" in error.lower():
        return f"The disk is full while {doing}: free some space (df -h), then run ./lab up again."
    return f"Docker failed while {doing}: {error.strip()}"


def stale(upstream: str) -> bool:
    """True if some catalogue tag is missing upstream or carries another content hash."""
    images = load_catalogue()
    hashes = content_hashes(images)
    return any(registry_label(upstream, i.name, t) != hashes[i.key] for i in images for t in i.tags)


def publish(client: Any, upstream: str, home: Path) -> dict[str, str]:
    """Build and push every catalogue image whose content changed. Returns ref -> content hash."""
    images = load_catalogue()
    hashes = content_hashes(images)
    made: list[str] = []
    last_created = 0
    try:
        for img in images:
            digest = hashes[img.key]
            if all(registry_label(upstream, img.name, t) == digest for t in img.tags):
                continue
            print(f"[lab] building {img.short}  ({', '.join(img.tags)})", file=sys.stderr, flush=True)
            # `docker image ls` orders by creation time in whole seconds: give every course image its
            # own second, so listings in the chapters come out in the same order on every machine.
            while time.time() < last_created + 1:
                time.sleep(0.05)
            image_id = _build(client, img, upstream, home, digest)
            last_created = _epoch(client.api.inspect_image(image_id)["Created"])
            for tag in img.tags:
                repo = f"{upstream}/{img.name}"
                client.api.tag(image_id, repo, tag)
                made.append(f"{repo}:{tag}")
                for chunk in client.api.push(repo, tag, stream=True, decode=True):
                    if "error" in chunk:
                        raise LabFailure(_explain(chunk["error"], f"pushing {img.name}:{tag}"))
    except OSError as e:
        raise LabFailure(_explain(str(e), "building the course images")) from e
    finally:
        _forget_local(client, upstream, made, images)
    return {f"{i.name}:{t}": hashes[i.key] for i in images for t in i.tags}


_BUILD_STEPS: list[str] = []


def _forget_local(client: Any, upstream: str, made: list[str], images: list[CatalogueImage]) -> None:
    """Leave the engine as clean as a fresh one: learners pull the course images themselves. Only
    what the builds made goes (their tags, then their step images); nothing of the learner's."""
    import docker.errors

    refs = set(made) | {f"{upstream}/{i.base}" for i in images if i.base}
    for step in reversed(_BUILD_STEPS):
        refs.add(step)
    _BUILD_STEPS.clear()
    for ref in sorted(refs, key=lambda r: (":" not in r and "/" not in r, r), reverse=False):
        try:
            if "/" not in ref and ":" not in ref and client.images.get(ref).tags:
                continue  # a step image that someone tagged meanwhile: not ours to delete
            client.images.remove(ref, noprune=False)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:  # e.g. a learner runs a container from it
            print(f"[lab] kept {ref}: {e.explanation}", file=sys.stderr)
