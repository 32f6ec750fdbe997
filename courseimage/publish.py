"""``./lab image push REGISTRY[/REPO][:TAG]``: the built course image archives (one per architecture,
``courseimage.build``) pushed to a registry as one multi-architecture OCI index.

Each archive's one layer is gzipped (kept beside the archive, redone only when the archive is newer),
its config and an OCI image manifest uploaded, then an OCI image index naming each manifest with its
platform (``linux/amd64``, ``linux/arm64``) under the tag. ``docker pull`` on either architecture
(Docker Desktop on an Apple Silicon Mac, a Linux laptop) gets its own. Plain HTTP, no credentials: a
classroom's own registry on its network, or a local one (``docker-registry``) to check the index;
a public registry takes ``docker buildx imagetools create`` from there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from labcore import distribution
from labcore.errors import LabFailure
from labcore.state import LabPaths

__all__ = ["LAYER", "push"]

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
CHUNK = 32 << 20


def _archive_parts(archive: Path) -> tuple[bytes, str]:
    """The archive's config (bytes) and its layer's member name."""
    with tarfile.open(archive) as tf:
        f = tf.extractfile("manifest.json")
        if f is None:
            raise LabFailure(f"{archive} has no manifest.json: build it again with ./lab image build.")
        entry = json.load(f)[0]
        cf = tf.extractfile(entry["Config"])
        assert cf is not None
        return cf.read(), str(entry["Layers"][0])


def _gz_layer(archive: Path, member: str, level: int = 6) -> tuple[Path, str, int]:
    """The layer gzipped beside the archive (reused while newer than it): path, digest, size."""
    suffix = ".layer.tar.gz" if level == 6 else f".layer-gzip{level}.tar.gz"
    out = archive.with_name(archive.name.removesuffix(".tar") + suffix)
    digest_file = out.with_name(out.name + ".sha256")
    if not (out.exists() and digest_file.exists() and out.stat().st_mtime >= archive.stat().st_mtime):
        tmp = out.with_name(out.name + ".part")
        with tarfile.open(archive) as tf:
            src = tf.extractfile(member)
            assert src is not None
            with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0,
                                                       filename="") as gz:
                shutil.copyfileobj(src, gz, 1 << 20)
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        tmp.replace(out)
        digest_file.write_text(f"sha256:{h.hexdigest()}\n")
    return out, digest_file.read_text().strip(), out.stat().st_size


def _has_blob(registry: str, repo: str, digest: str) -> bool:
    try:
        distribution.request(registry, f"/v2/{repo}/blobs/{digest}", "HEAD")
        return True
    except distribution.NotFound:
        return False


def _location(registry: str, headers: dict[str, str]) -> str:
    loc = headers.get("Location", "")
    parts = urllib.parse.urlsplit(loc)
    return parts.path + ("?" + parts.query if parts.query else "") if parts.scheme else loc


def _upload(registry: str, repo: str, digest: str, source: Path | bytes) -> None:
    """One blob, in chunks (PATCH), then its digest (PUT): a registry's monolithic-or-chunked upload."""
    if _has_blob(registry, repo, digest):
        return
    _, headers = distribution.request(registry, f"/v2/{repo}/blobs/uploads/", "POST", data=b"")
    where = _location(registry, headers)
    stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    with stream:
        offset = 0
        while chunk := stream.read(CHUNK):
            _, headers = distribution.request(
                registry, where, "PATCH", data=chunk, timeout=300,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            where = _location(registry, headers)
            offset += len(chunk)
    sep = "&" if "?" in where else "?"
    distribution.request(registry, f"{where}{sep}digest={urllib.parse.quote(digest)}", "PUT", data=b"", timeout=300)


def push(lab: LabPaths, target: str, say: Callable[[str], None], gzip_level: int = 6) -> str:
    """Push every built architecture's archive as one index under ``target`` (``host:port/repo:tag``);
    returns the index's digest. ``gzip_level``: the layers' (the tests push with 1: the same code, faster)."""
    from courseimage.build import ARCHIVE, host_arch

    registry, _, rest = target.partition("/")
    repo, _, tag = (rest or "dockerlab/course").partition(":")
    top = lab.home / "image"
    archives = {host_arch(): top / ARCHIVE}
    archives.update({p.name.removeprefix("course-image-").removesuffix(".tar"): p
                     for p in sorted(top.glob("course-image-*.tar"))})  # courseimage.build.archive_name
    archives = {arch: p for arch, p in archives.items() if p.exists()}
    if not archives:
        raise LabFailure("No course image built yet: run ./lab image build first.")
    entries = []
    for arch, archive in sorted(archives.items()):
        config, member = _archive_parts(archive)
        cfg = json.loads(config)
        if cfg["architecture"] != arch:
            raise LabFailure(f"{archive} is a {cfg['architecture']} image, not {arch}: build it again.")
        tag = tag or cfg["config"]["Labels"]["org.opencontainers.image.version"].split("+")[0]
        say(f"{arch}: compressing the layer of {archive.name}")
        layer, layer_digest, layer_size = _gz_layer(archive, member, gzip_level)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        say(f"{arch}: uploading {layer_size / 2**20:.0f} MiB to {registry}/{repo}")
        _upload(registry, repo, layer_digest, layer)
        _upload(registry, repo, config_digest, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": distribution.OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer_size}],
            "annotations": {k: v for k, v in cfg["config"]["Labels"].items() if k.startswith("org.opencontainers.")},
        }, sort_keys=True).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        distribution.put_manifest(registry, repo, digest, manifest, distribution.OCI_MANIFEST)
        entries.append({"mediaType": distribution.OCI_MANIFEST, "digest": digest, "size": len(manifest),
                        "platform": {"os": cfg["os"], "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": distribution.OCI_INDEX, "manifests": entries},
                       sort_keys=True).encode()
    distribution.put_manifest(registry, repo, tag, index, distribution.OCI_INDEX)
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    say(f"{registry}/{repo}:{tag} is an index of {', '.join(sorted(archives))} ({digest})")
    return digest
