"""IPython magics: thin. Parse arguments, call the API, return something displayable.

``%docker ARGS`` runs the real docker CLI against the lab engine, streaming its output (``pull``
uses the live view instead; ``%docker history IMAGE`` is the CLI's own table, ``lab.history()``
the view); ``%layers``, ``%diff``, ``%lab``. No IPython built-in is replaced (IPython's own
``%history`` stays), and ``%unload_ext kernel_ext`` puts back exactly what loading changed.
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import cli
from . import lab as _lab
from .connection import SESSION_LABEL
from .errors import LabError
from .messages import t
from .names import aliases, own, rewrite_args, rewrite_bang_lines, rewrite_shell

__all__ = ["MAGICS", "DockerLabMagics", "load", "unload", "with_session_label"]

MAGICS = ("docker", "layers", "diff", "lab")  # the line magics this extension adds

_STATE: dict[str, Any] = {}


def _get_lab() -> _lab.Lab:
    lab = _STATE.get("lab")
    if lab is None:
        lab = _STATE["lab"] = _lab.connect()
    return lab


_NAME = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def expand_names(line: str, namespace: dict[str, Any]) -> str:
    """``{REG}`` -> the value of ``REG``; ``{{.ID}}`` and unknown names stay as they are.

    >>> expand_names("push {REG}/x --format '{{.ID}}' {nope}", {"REG": "127.0.0.1:5000"})
    "push 127.0.0.1:5000/x --format '{{.ID}}' {nope}"
    """
    return _NAME.sub(lambda m: str(namespace[m.group(1)]) if m.group(1) in namespace else m.group(0), line)


# Subcommands that make an object: the magic labels it with the session, as Lab.run does, so a
# chapter's reset (kernel_ext.reset) and `%lab cleanup` can tell it from what the learner made elsewhere.
# `docker commit` needs nothing: the image keeps the container's labels.
_LABELLED = (("run",), ("create",), ("container", "run"), ("container", "create"), ("build",),
             ("image", "build"), ("volume", "create"), ("network", "create"))
_LABELLED_RE = re.compile(r"\s*(?:" + "|".join(r"\s+".join(sub) for sub in _LABELLED) + r")(?=\s)")


def with_session_label(args: list[str], session: str) -> list[str]:
    """``run``/``create``/``build`` (and volume/network create) get ``--label org.dockerlab.session=ID``.

    >>> with_session_label(["run", "--rm", "busybox"], "ab12cd34")
    ['run', '--label', 'org.dockerlab.session=ab12cd34', '--rm', 'busybox']
    >>> with_session_label(["image", "ls"], "ab12cd34")
    ['image', 'ls']
    """
    for sub in _LABELLED:
        if tuple(args[:len(sub)]) == sub:
            n = len(sub)
            return [*args[:n], "--label", f"{SESSION_LABEL}={session}", *args[n:]]
    return args


@magics_class
class DockerLabMagics(Magics):  # type: ignore[misc]
    @no_var_expand
    @line_magic
    def docker(self, line: str) -> Any:
        """Run the docker CLI against the lab engine: ``%docker image ls -f dangling=true``.

        ``%docker pull REF`` shows the live per-layer progress view instead of the CLI's text, then
        what arrived (the result object: ``lab.pull(REF)`` returns it).
        Shell syntax ``$(...)`` is expanded by a shell, as the book's examples need. ``{name}``
        (a plain Python variable in single braces) is replaced by its value; Go templates such as
        ``{{.ID}}`` reach docker intact.
        """
        if not line.strip():
            raise UsageError(t("magic.usage.docker"))
        line = expand_names(line, self.shell.user_ns if self.shell is not None else {})
        if "$(" in line or "|" in line or "`" in line:
            args = ["__shell__", line]
        else:
            try:
                args = shlex.split(line)
            except ValueError as e:
                raise UsageError(str(e)) from e
        held = [a for a in args[1:] if a in aliases] if args[:1] == ["pull"] else []
        if held:  # the learner's own image holds the name: the course's copy goes under its own
            args = ["pull", held[0]]
        if args and args[0] == "pull" and len(args) == 2 and not args[1].startswith("-"):
            from IPython.display import display

            # Displayed rather than returned: several pulls in one cell each show their log, once
            # (the live view closes itself); `lab.pull(ref)` returns the same result object.
            display(_guard(lambda: _get_lab().pull(args[1])))
            return None
        if args[0] == "__shell__":
            line = rewrite_shell(line)  # the book's names the learner's own objects hold (kernel_ext.names)
            m = _LABELLED_RE.match(line)
            if m:  # the label goes right after the subcommand; the rest keeps its shell syntax
                line = f"{m.group(0)} --label {SESSION_LABEL}={_guard(_get_lab).session}{line[m.end():]}"
            code = _guard(lambda: cli.run_shell(line))
        else:
            args = rewrite_args(args)
            if any(tuple(args[:len(sub)]) == sub for sub in _LABELLED):
                args = with_session_label(args, _guard(_get_lab).session)
            code = _guard(lambda: cli.run(args))
        if code:
            print(t("magic.exit", code=code), file=sys.stderr)
        return None

    @magic_arguments()
    @argument("images", nargs="*", help="images to draw (default: all)")
    @line_magic
    def layers(self, line: str) -> Any:
        """Draw the layer graph: ``%layers`` (all images) or ``%layers nginx redis``."""
        from .views.graph import layer_graph

        refs = [own(r) for r in _parse(self.layers, line).images] or None
        return _guard(lambda: layer_graph(_get_lab(), refs))

    @magic_arguments()
    @argument("container", nargs="?", help="the container's name or id")
    @line_magic
    def diff(self, line: str) -> Any:
        """The changes in a container's writable layer, as a tree: ``%diff webserver``."""
        name = _parse(self.diff, line).container
        if not name:
            raise UsageError(t("magic.usage.diff"))
        return _guard(lambda: _get_lab().diff(name))

    @magic_arguments()
    @argument("action", nargs="?", choices=["cleanup"], help="cleanup: remove what this session labelled")
    @line_magic
    def lab(self, line: str) -> Any:
        """``%lab`` shows the session; ``%lab cleanup`` removes what this session labelled."""
        action = _parse(self.lab, line).action
        lab = _guard(_get_lab)
        if action == "cleanup":
            return _guard(lab.cleanup)
        cfg = lab.config
        print(t("magic.lab", session=lab.session, host=cfg.docker_host, mirror=cfg.mirror or "-"))
        return None


def _parse(magic: Any, line: str) -> Any:
    """IPython's magic_arguments, with a usage error (one line) instead of SystemExit."""
    try:
        return parse_argstring(magic, line)
    except UsageError:
        raise
    except SystemExit:  # argparse's --help or a bad argument: IPython has printed the usage
        raise UsageError(magic.__doc__.strip().splitlines()[0]) from None


def _guard(fn: Any) -> Any:
    """One readable line for a LabError in a notebook, never a docker-py traceback."""
    try:
        return fn()
    except LabError as e:
        raise UsageError(str(e)) from None


def _show_lab_error(shell: Any, etype: Any, value: Any, tb: Any, tb_offset: Any = None) -> None:
    print(f"✘ {value}", file=sys.stderr)


def load(ipython: Any) -> None:
    """Register the magics and the one-line error display; remember what was there before."""
    from . import vmcompare
    from .views.pull import live_pull_view

    line_magics = ipython.magics_manager.magics["line"]
    _STATE["previous_magics"] = {name: line_magics.get(name) for name in MAGICS}
    _STATE["previous_exc"] = (ipython.custom_exceptions, ipython.CustomTB)
    ipython.register_magics(DockerLabMagics)
    ipython.set_custom_exc((LabError,), _show_lab_error)
    _STATE["previous_listener"] = _lab.default_pull_listener[0]
    _lab.default_pull_listener[0] = live_pull_view
    _STATE["previous_vm_progress"] = vmcompare.default_progress[0]
    vmcompare.default_progress[0] = vmcompare.LiveProgress
    if rewrite_bang_lines not in ipython.input_transformers_cleanup:  # `!docker` lines: the course's names too
        ipython.input_transformers_cleanup.append(rewrite_bang_lines)


def unload(ipython: Any) -> None:
    """Undo ``load`` exactly: the magics that were there before, the previous error display."""
    from . import vmcompare

    line_magics = ipython.magics_manager.magics["line"]
    for name, previous in _STATE.pop("previous_magics", {name: None for name in MAGICS}).items():
        if previous is None:
            line_magics.pop(name, None)
        else:
            line_magics[name] = previous
    ipython.custom_exceptions, ipython.CustomTB = _STATE.pop("previous_exc", ((), ipython.CustomTB))
    _lab.default_pull_listener[0] = _STATE.pop("previous_listener", None)
    vmcompare.default_progress[0] = _STATE.pop("previous_vm_progress", None)
    while rewrite_bang_lines in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(rewrite_bang_lines)
    _STATE.pop("lab", None)
