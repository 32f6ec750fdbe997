"""One multi-architecture index: ``./lab image push`` (``courseimage.publish``) puts the amd64 and the
arm64 course image archives into a registry (Debian's ``docker-registry``, a throwaway one) as one OCI
image index, and a Docker Engine (the test's rootful one) pulling the tag for each platform gets that
architecture's image, whose id is that archive's config.

Root, and both archives (``./lab test`` builds them; by hand ``sudo ./lab image build`` and
``sudo ./lab image build --arch arm64``)::

    sudo .venv/bin/python -m pytest tests/image/test_index.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from courseimage.publish import push
from labcore import distribution, proc
from labcore.state import LabPaths
from labengine.registry import Registry

from .conftest import ARCHIVE, ARM64, need_arm64
from .imageutil import Docker

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful dockerd: run as root"),
]


@pytest.fixture(scope="module", autouse=True)
def _arm64() -> None:
    """Before the module's other fixtures (autouse first within a scope): skip, or fail in ./lab test."""
    need_arm64()


def _config_digest(archive: Path) -> str:
    with tarfile.open(archive) as tf:
        f = tf.extractfile("manifest.json")
        assert f is not None
        name = json.load(f)[0]["Config"]
        cf = tf.extractfile(name)
        assert cf is not None
        return "sha256:" + hashlib.sha256(cf.read()).hexdigest()


def test_one_index_for_both_architectures(desktop: Docker) -> None:
    top = Path(tempfile.mkdtemp(prefix="dlindex-", dir="/var/tmp"))
    reg = Registry(name="index", port=proc.free_port(15290), storage=top / "storage", run=top, logs=top)
    ref = f"{reg.addr}/dockerlab/course:index-test"
    try:
        reg.start()
        said: list[str] = []
        # the archives seen from a home of the test's own: the gzipped layers push keeps beside them stay there
        (top / "image").mkdir()
        for archive in (ARCHIVE, ARM64):
            (top / "image" / archive.name).symlink_to(archive)
        digest = push(LabPaths(home=top, run=top), ref, said.append, gzip_level=1)
        index, raw, _ = distribution.manifest(reg.addr, "dockerlab/course", "index-test")
        assert index["mediaType"] == distribution.OCI_INDEX and digest == "sha256:" + hashlib.sha256(raw).hexdigest()
        platforms = sorted((m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"])
        assert platforms == [("linux", "amd64"), ("linux", "arm64")], index
        for arch, archive in (("arm64", ARM64), ("amd64", ARCHIVE)):
            desktop("pull", "--platform", f"linux/{arch}", ref, timeout=1200)
            got = desktop("image", "inspect", "-f", "{{.Id}} {{.Architecture}}", ref).stdout.split()
            assert got == [_config_digest(archive), arch], (arch, got)
            desktop("rmi", ref)
        print("\n" + "\n".join(said))
    finally:
        reg.stop()
        shutil.rmtree(top, ignore_errors=True)
