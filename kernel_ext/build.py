"""A build's steps as BuildKit's terminal display lists them (``=> CACHED [2/3] RUN …``), read from
``docker build --progress=plain`` and shown without the times, so a notebook can show which steps
came from the build cache and which ran.

>>> b = parse(PLAIN_EXAMPLE, stages=["stage-0"], tag="app:1")
>>> print(b)
=> [internal] 构建上下文：约 1.2kB
=> [1/3] FROM busybox:1.35
=> CACHED [2/3] RUN echo one > /one.txt
=> [3/3] COPY app.sh /app/
✔ 构建完成 app:1：3 步，其中 1 步用了缓存（CACHED）
>>> b.cached, b.ran
(['RUN echo one > /one.txt'], ['COPY app.sh /app/'])
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import cli_env
from .connection import SESSION_LABEL, lab_config
from .errors import ToolMissing
from .messages import t

__all__ = ["Build", "build", "parse", "parse_classic", "retried"]

_VERTEX = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")             # "#5 [2/3] RUN echo hi"
_CACHED = re.compile(r"^#(\d+) CACHED$")
_DONE = re.compile(r"^#(\d+) DONE(?: \d|$)")
_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")                # a RUN's output: "#5 0.213 hello"
_CONTEXT = re.compile(r"^#(\d+) transferring context: ([\d.]+)([kMG]?B)")
_STEP = re.compile(r"^\[(?:(\S+) )?(\d+)/(\d+)\] (.*)$")      # "[build 2/3] RUN …" / "[2/3] RUN …"
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.I | re.M)
_UNIT = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
_SNAPSHOT_RACE = re.compile(r"failed to prepare extraction snapshot .*parent snapshot \S+ does not exist")

PLAIN_EXAMPLE = """#0 building with "default" instance using docker driver
#3 [internal] load .dockerignore
#3 transferring context: 2B done
#5 [internal] load build context
#5 transferring context: 1.23kB done
#5 DONE 0.0s
#4 [1/3] FROM docker.io/library/busybox:1.35@sha256:0123
#6 [2/3] RUN echo one > /one.txt
#6 CACHED
#7 [3/3] COPY app.sh /app/
#7 DONE 0.1s
#8 exporting to image
"""


def _short(name: str) -> str:
    """``FROM docker.io/library/busybox:1.35@sha256:…`` -> ``FROM busybox:1.35``."""
    name = re.sub(r"@sha256:[0-9a-f]+", "", name)
    return re.sub(r"docker\.io/(?:library/)?", "", name)


def _about(size: float) -> str:
    """Two significant digits: the context's byte count moves a little with file metadata."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" or size >= 10 else f"{size:.1f}{unit}"
        size /= 1000
    return f"{size}GB"


@dataclass
class Step:
    stage: str
    n: int
    of: int
    text: str
    cached: bool = False
    done: bool = False  # ran to its end in this build ("#5 DONE 0.3s")
    error: str = ""
    output: list[str] = field(default_factory=list)


@dataclass
class Build:
    """What one build did, step by step (``str()`` is the listing; ``cached``/``ran``: step texts)."""

    steps: list[Step]
    context: float | None = None  # bytes of build context sent (BuildKit's "transferring context")
    code: int = 0
    error: list[str] = field(default_factory=list)
    tag: str = ""
    retried: bool = False  # the engine's known unpacking race hit the first attempt (see ``build``)

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def cached(self) -> list[str]:
        return [s.text for s in self.steps if s.cached]

    @property
    def ran(self) -> list[str]:
        return [s.text for s in self.steps if not s.cached and not s.text.startswith("FROM ")]

    def __str__(self) -> str:
        lines = [t("build.retried")] if self.retried else []
        if self.context is not None:
            lines.append(t("build.context", size=_about(self.context)))
        for s in self.steps:
            where = f"{s.stage} " if s.stage and not s.stage.startswith("stage-0") else ""
            mark = "CACHED " if s.cached else "ERROR " if s.error else ""
            lines.append(f"=> {mark}[{where}{s.n}/{s.of}] {s.text}")
            lines.extend(f"   │ {o}" for o in s.output)
        if self.error:
            lines.extend(self.error)
        if self.code == 0 and self.steps:
            lines.append(t("build.done", tag=self.tag or "—", n=len(self.steps), cached=len(self.cached)))
        elif self.code:
            lines.append(t("build.failed", code=self.code))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def __repr__(self) -> str:
        return str(self)


def parse(text: str, stages: list[str] | None = None, code: int = 0, tag: str = "") -> Build:
    """A build's steps from ``--progress=plain`` output, in Dockerfile order (stage by stage)."""
    steps: dict[str, Step] = {}
    context = None
    context_vertex = ""  # "#3 [internal] load .dockerignore
#3 transferring context: 2B done
#5 [internal] load build context" (not the .dockerignore's, which says the same)
    error: list[str] = []
    for line in text.splitlines():
        if m := _VERTEX.match(line):
            s = _STEP.match(m.group(2))
            if m.group(2) == "[internal] load build context":
                context_vertex = m.group(1)
            if s and m.group(1) not in steps:
                steps[m.group(1)] = Step(s.group(1) or "", int(s.group(2)), int(s.group(3)), _short(s.group(4)))
        elif m := _CACHED.match(line):
            if m.group(1) in steps and not steps[m.group(1)].text.startswith("FROM "):
                steps[m.group(1)].cached = True
        elif m := _DONE.match(line):
            if m.group(1) in steps:
                steps[m.group(1)].done = True
        elif m := _ERROR.match(line):
            if m.group(1) in steps:
                steps[m.group(1)].error = m.group(2)
        elif m := _OUTPUT.match(line):
            if m.group(1) in steps:
                steps[m.group(1)].output.append(m.group(2).rstrip())
        elif (m := _CONTEXT.match(line)) and m.group(1) == context_vertex:
            context = float(m.group(2)) * _UNIT[m.group(3)]
        elif code and not line.startswith("#") and line.strip():
            error.append(line.rstrip())  # the Dockerfile excerpt and the final ERROR: sentence
    order = {name: i for i, name in enumerate(stages or [])}
    ordered = sorted(steps.values(), key=lambda s: (order.get(s.stage, len(order)), s.stage, s.n))
    return Build(ordered, context, code, error, tag)


_CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def parse_classic(text: str, code: int = 0, tag: str = "") -> Build:
    """A build's steps from the classic builder's output (``Step 2/3 : RUN …``, `` ---> Using cache``).

    >>> out = "Step 1/2 : FROM busybox:1.35\\n ---> 1a2b\\nStep 2/2 : RUN echo hi\\n ---> Using cache\\n"
    >>> b = parse_classic(out, tag="t:1")
    >>> b.cached, [s.text for s in b.steps]
    (['RUN echo hi'], ['FROM busybox:1.35', 'RUN echo hi'])
    """
    steps: list[Step] = []
    error: list[str] = []
    for line in text.splitlines():
        if m := _CLASSIC_STEP.match(line):
            steps.append(Step("", int(m.group(1)), int(m.group(2)), _short(m.group(3))))
        elif line.strip() == "---> Using cache" and steps and not steps[-1].text.startswith("FROM "):
            steps[-1].cached = True
        elif code and line.strip() and not line.startswith((" ", "DEPRECATED", "Sending build context")):
            error.append(line.rstrip())
    return Build(steps, None, code, error[-3:], tag)


def _stages(args: list[str]) -> list[str]:
    """The stage names of the Dockerfile a build reads (``-f``, else ``CONTEXT/Dockerfile``), in order."""
    path = None
    for i, a in enumerate(args):
        if a in ("-f", "--file") and i + 1 < len(args):
            path = Path(args[i + 1])
        elif a.startswith("--file="):
            path = Path(a.split("=", 1)[1])
    if path is None and args and not args[-1].startswith("-"):
        path = Path(args[-1]) / "Dockerfile"
    try:
        text = path.read_text() if path else ""
    except OSError:
        return []
    return [m.group(2) or f"stage-{i}" for i, m in enumerate(_FROM.finditer(text))]


def _cli(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), stdin=subprocess.DEVNULL)


def build(lab: Any, *args: str) -> Build:
    """``docker build ARGS`` on the lab's engine (labelled with the session, as ``%docker build``),
    its steps listed as BuildKit's terminal display lists them, without the times."""
    argv = list(args)
    tag = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-t", "--tag")), "")
    cmd = [lab_config().docker_cli, "build", "--progress=plain", "--label", f"{SESSION_LABEL}={lab.session}", *argv]
    try:
        r = _cli(cmd)
        if r.returncode and "unknown flag: --progress" in r.stderr:
            # A CLI without the buildx plugin (the host's docker.io alone, a grading sandbox) builds with
            # the engine's classic builder, which has no --progress: its "Step N/M : …" lines are read.
            cmd.remove("--progress=plain")
            r = _cli(cmd)
            return parse_classic(r.stdout + r.stderr, r.returncode, tag)
    except FileNotFoundError as e:
        raise ToolMissing("cli.missing") from e
    out = r.stdout + r.stderr
    first, stages = None, _stages(argv)
    if r.returncode and _SNAPSHOT_RACE.search(out):
        # moby/buildkit#6521 (open): now and then unpacking the finished image finds a parent snapshot
        # gone ("failed to prepare extraction snapshot ... parent snapshot ... does not exist"); the same
        # build again succeeds from the cache. Once, and said in one line.
        first = parse(out, stages, r.returncode, tag)
        r = _cli(cmd)
        out = r.stdout + r.stderr
    if r.returncode and not _VERTEX.search(out) and "#" not in out[:3]:  # refused before building
        lines = [line for line in out.splitlines() if line.strip()][-3:]
        return Build([], None, r.returncode, lines, tag, first is not None)
    b = parse(out, stages, r.returncode, tag)
    return b if first is None else retried(first, b)


def retried(first: Build, second: Build) -> Build:
    """The second attempt's listing, with the steps the first attempt ran shown as run: the second found
    them in the cache only because the first had just made them (chapter 7's cache demonstration would
    otherwise say its changed step came from the cache).

    >>> first = parse(PLAIN_EXAMPLE, ["stage-0"], 1, "app:1")  # step 2 from the cache, step 3 ran
    >>> second = parse(PLAIN_EXAMPLE.replace("#7 DONE 0.1s", "#7 CACHED"), ["stage-0"], 0, "app:1")
    >>> second.cached
    ['RUN echo one > /one.txt', 'COPY app.sh /app/']
    >>> b = retried(first, second)
    >>> b.cached, b.ran, b.retried
    (['RUN echo one > /one.txt'], ['COPY app.sh /app/'], True)
    """
    ran = {(s.stage, s.n, s.text): s for s in first.steps if s.done and not s.cached}
    for s in second.steps:
        if s.cached and (s.stage, s.n, s.text) in ran:
            s.cached, s.output = False, ran[s.stage, s.n, s.text].output  # and what it printed then
    second.retried = True
    return second
