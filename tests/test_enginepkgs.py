"""Where the lab's engine comes from: the pinned Debian packages, and the fallback rule when they
cannot be fetched (real apt runs, against an address that refuses connections)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from labengine import enginepkgs


def test_the_lab_runs_the_pinned_engine_from_the_cache() -> None:
    pins = enginepkgs.load_pins()["pins"]
    found = enginepkgs.ensure(print)  # already fetched by ./lab test's set-up: must not download
    assert found.packages == pins and found.source == "Debian unstable (pinned)"
    out = subprocess.run([found.dockerd, "--version"], capture_output=True, text=True, check=True).stdout
    assert pins["docker.io"].split("+")[0] in out  # e.g. "Docker version 28.5.2+dfsg4, build ..."
    recorded = json.loads((enginepkgs.cache_dir() / "current.json").read_text())
    assert recorded["version"] == pins["docker.io"]


def test_unreachable_archive_falls_back_to_the_copy_fetched_earlier(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    real = enginepkgs.ensure(print)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "current.json").write_text(json.dumps({**real.__dict__, "packages": {"docker.io": "0-old"}}))
    conf = {**enginepkgs.load_pins(), "mirror": "http://127.0.0.1:9/debian", "suites": ["unstable"]}
    monkeypatch.setattr(enginepkgs, "load_pins", lambda: conf)
    got = enginepkgs.ensure(said.append, cache=cache)
    assert got.root == real.root  # the earlier copy, not nothing
    assert any("could not be fetched" in s and "copy fetched earlier" in s for s in said), said


def test_unreachable_archive_and_no_copy_falls_back_to_the_hosts_engine(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    conf = {**enginepkgs.load_pins(), "mirror": "http://127.0.0.1:9/debian", "suites": ["unstable"]}
    monkeypatch.setattr(enginepkgs, "load_pins", lambda: conf)
    host = enginepkgs.host_engine()
    if host is None:
        with pytest.raises(enginepkgs.LabFailure, match="No Docker Engine available"):
            enginepkgs.ensure(said.append, cache=tmp_path / "empty")
        return
    got = enginepkgs.ensure(said.append, cache=tmp_path / "empty")
    assert got.root == "/" and "host's docker.io" in got.source
    assert any("falling back to the host's docker.io" in s and "deb.debian.org" in s for s in said), said
