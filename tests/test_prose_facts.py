"""What the chapters' prose says about the lab is what the running lab is: its registries' ports, the
engine's version and components, the mirror ``docker info`` lists, and the cgroup facts.

The prose is read from ``notebooks/src/*.md`` (what authors edit); the lab is the one ``./lab test``
brought up, asked through its engine. Each sentence that names a fact of the lab is listed below with
the fact it names: when a sentence is rewritten the list says which one to look at, and when the lab
moves (a new engine, another port) the sentences that no longer hold fail here rather than in a
learner's notebook.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from labctl.__main__ import DEFAULT_PORTS

REPO = Path(__file__).resolve().parent.parent
SRC = {p.stem: p.read_text() for p in sorted((REPO / "notebooks" / "src").glob("*.md"))}
FENCE = re.compile(r"(?ms)^(`{3,})[^\n]*\n.*?^\1[ \t]*$")


def prose(text: str) -> str:
    """The Markdown a learner reads, without code cells and fenced examples (the book's own commands
    with its own ports and versions are examples, not facts of the lab)."""
    return FENCE.sub("", text)


def chapter(stem_prefix: str) -> str:
    return next(text for stem, text in SRC.items() if stem.startswith(stem_prefix))


# -- ports ----------------------------------------------------------------------------------------
# (chapter, a sentence's pattern, the roles its numbers name, in order); code cells count here: the
# index states the defaults in a code cell's comment.
PORT_CLAIMS = [
    ("00", r"默认端口 (\d+)、(\d+)、(\d+)", ("upstream", "mirror", "learner")),
    ("03", r"本实验默认 127\.0\.0\.1:(\d+)", ("learner",)),
    ("05", r"第三章推送的 `127\.0\.0\.1:(\d+)/course", ("learner",)),
]


@pytest.mark.parametrize(("ch", "pattern", "roles"), PORT_CLAIMS, ids=[c[0] + ":" + c[1][:12] for c in PORT_CLAIMS])
def test_the_default_ports_the_prose_names_are_the_launchers(ch: str, pattern: str, roles: tuple[str, ...]) -> None:
    found = re.findall(pattern, chapter(ch))
    assert found, f"chapter {ch} no longer says {pattern!r}: update PORT_CLAIMS to the sentence that names the port"
    for match in found:
        numbers = (match,) if isinstance(match, str) else match
        assert {r: int(n) for r, n in zip(roles, numbers)} == {r: DEFAULT_PORTS[r] for r in roles}


def test_no_other_lab_port_in_the_prose() -> None:
    """Every 51xx number anywhere in a chapter is one of the launcher's defaults (the issue found
    5000/5001 and 5100-5102 mixed; the book's 5000 stays in the book's own examples)."""
    for stem, text in SRC.items():
        stray = {int(n) for n in re.findall(r"(?<![\d.])(51\d\d)(?![\d.])", text)} - set(DEFAULT_PORTS.values())
        assert not stray, f"{stem}: ports {sorted(stray)} are none of the lab's default ports {DEFAULT_PORTS}"


def test_the_running_lab_listens_where_the_prose_says(state) -> None:  # type: ignore[no-untyped-def]
    """00-index: 「默认端口 5100、5101、5102，被占用时 ./lab up 会顺延」 — each registry is on the host's
    loopback at its default port or, when that was taken, a higher one (or where LAB_*_PORT put it)."""
    for role, addr in (("upstream", state.upstream), ("mirror", state.mirror), ("learner", state.registry)):
        host, _, port = addr.rpartition(":")
        assert host == "127.0.0.1", addr
        wanted = os.environ.get(f"LAB_{role.upper()}_PORT")
        assert int(port) == int(wanted) if wanted else int(port) >= DEFAULT_PORTS[role], (role, addr)


def test_docker_info_lists_the_mirror_the_prose_says(state, client) -> None:  # type: ignore[no-untyped-def]
    """05, 5.5: 「本实验的引擎配置了一个」 mirror, the lab's, shown by ``docker info``; 5.1/5.2 prints the
    daemon.json the engine reads from the lab's home."""
    assert "本实验的引擎配置了一个" in chapter("05")
    mirrors = [m.rstrip("/") for m in client.info()["RegistryConfig"]["Mirrors"]]
    assert f"http://{state.mirror}" in mirrors
    assert 'os.path.join(os.environ.get("LAB_HOME", "../.lab"), "engine", "daemon-lab.json")' in chapter("05")
    home = Path(os.environ.get("LAB_HOME") or REPO / ".lab")
    config = json.loads((home / "engine" / "daemon-lab.json").read_text())
    assert f"http://{state.mirror}" in config["registry-mirrors"]


# -- versions -------------------------------------------------------------------------------------
# (chapter, a sentence's pattern, which part of the engine it names)
VERSION_CLAIMS = [
    ("01", r"本实验的引擎是 (\d+\.\d+)", "Engine"),
    ("04", r"`docker\.io` (\d+\.\d+) 放进实验账户", "Engine"),
    ("04", r"Debian unstable 打包的 Docker (\d+\.\d+)", "Engine"),
    ("04", r"`Engine` 是 dockerd (\d+\.\d+)", "Engine"),
    ("04", r"`containerd` (\d+\.\d+\.\d+)", "containerd"),
    ("04", r"`runc` 是 (\d+\.\d+\.\d+)", "runc"),
    ("06", r"这台引擎（Docker (\d+\.\d+)", "Engine"),
    ("06", r"本实验的 Docker (\d+\.\d+)", "Engine"),
    ("06", r"修正在这台 (\d+\.\d+) 之后的版本里", "Engine"),
]
# Versions the prose names as history, not as the lab's (Debian 12's docker.io, the first calendar-free
# releases, the release that stopped the bridge-nf warnings, the release that made the containerd
# store the default). Any other Docker-like version in the prose must be the lab engine's.
HISTORY = {"20.10", "23.0", "24.0", "25.0", "27.4", "29.0"}


@pytest.fixture(scope="module")
def components(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    v = client.version()
    found = {c["Name"]: c["Version"] for c in v.get("Components", [])}
    found.setdefault("Engine", v["Version"])
    return found


def _same(claim: str, version: str) -> bool:
    """``28.5`` names ``28.5.2+dfsg4``; ``1.1.5`` names ``1.1.5`` (runc prints ``1.1.5+ds1``)."""
    return re.match(re.escape(claim) + r"(?![\d])", version.lstrip("v")) is not None


@pytest.mark.parametrize(("ch", "pattern", "part"), VERSION_CLAIMS,
                         ids=[c[0] + ":" + c[1][:14] for c in VERSION_CLAIMS])
def test_the_versions_the_prose_names_are_the_engines(components: dict[str, str], ch: str, pattern: str,
                                                      part: str) -> None:
    found = re.findall(pattern, prose(chapter(ch)))
    assert found, f"chapter {ch} no longer says {pattern!r}: update VERSION_CLAIMS to the sentence that names it"
    for claim in found:
        assert _same(claim, components[part]), f"chapter {ch} says {part} {claim}; the lab's is {components[part]}"


def test_no_other_engine_version_in_the_prose(components: dict[str, str]) -> None:
    engine = ".".join(components["Engine"].split(".")[:2])
    for stem, text in SRC.items():
        named = set(re.findall(r"(?<![\d.])(2\d\.\d+)(?:\.\d+)?(?![\d])", prose(text)))
        stray = named - HISTORY - {engine}
        assert not stray, (f"{stem} names Docker {sorted(stray)}, which is neither the lab's engine ({engine}) "
                           f"nor a version the prose names as history ({sorted(HISTORY)})")


# -- cgroups --------------------------------------------------------------------------------------
def test_the_prose_never_states_one_cgroup_version_for_every_machine() -> None:
    """A sentence that names cgroup v1 names v2 too (or the reverse): which one a machine has is read from
    the engine (Debian 11+ and Ubuntu 21.10+ are v2, this CI machine is v1)."""
    for stem, text in SRC.items():
        for para in re.split(r"\n\s*\n", prose(text)):
            if "cgroup v" in para:
                named = set(re.findall(r"(?<![/\w])v([12])\b", para))
                assert named == {"1", "2"}, f"{stem}: a paragraph names only cgroup v{named.pop()}:\n{para}"


def test_chapter_1_shows_the_engines_cgroup_facts(client) -> None:  # type: ignore[no-untyped-def]
    """The stored output of chapter 1's `docker info` cell is what this lab's engine reports."""
    nb = json.loads(next((REPO / "notebooks").glob("01-*.ipynb")).read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code"
                and "{{.CgroupVersion}}" in "".join(c["source"]) and "%docker info" in "".join(c["source"]))
    stored = "".join("".join(o.get("text", "")) for o in cell["outputs"]).strip()
    info = client.info()
    assert stored == f"cgroup 版本 {info['CgroupVersion']}，驱动 {info['CgroupDriver']}"


# -- the course image ------------------------------------------------------------------------------
def test_chapter_4_runs_the_course_image_as_the_readme_and_the_image_say() -> None:
    """The one command chapter 4 gives for Docker Desktop is the README's and the image's own README's,
    which tests/image runs; the image's tag is the one the build writes."""
    from courseimage.build import NAME

    command = re.compile(r"(?m)docker run --privileged -p 127\.0\.0\.1:8888:8888 -v dockerlab-work:/home/learner "
                         r"([^\s`]+)(?:`|$)")
    found = {doc: command.findall(text) for doc, text in (
        ("chapter 4", chapter("04")), ("README.md", (REPO / "README.md").read_text()),
        ("courseimage/README.md", (REPO / "courseimage" / "README.md").read_text()))}
    assert all(found.values()), found
    assert {image for images in found.values() for image in images} == {NAME}, found
    from tests.image.test_course_image import RUN, VOLUME

    assert RUN[-3:] == ["--privileged", "-v", f"{VOLUME}:/home/learner"] and VOLUME == "dockerlab-work"
