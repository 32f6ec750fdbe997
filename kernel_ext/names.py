"""The book's names, and the name the course uses instead when the learner's own object holds one.

A chapter uses the book's names (a container ``webserver``, an image ``nginx:v2``, a volume
``ch03-notes``). When the learner made an object of that name themselves (no session label, not a
course image), the chapter's reset (:func:`kernel_ext.reset.reset`) leaves it alone, says so in one
sentence and picks a name of the course's own (``webserver-lab``, ``nginx:v2-lab``; ``-lab2``… if
that is taken too). From then on the kernel uses that name wherever the chapter says the book's:
``%docker`` arguments, ``!docker`` lines (:func:`rewrite_bang_lines`, an IPython input transformer),
``%layers``/``%diff``, ``lab.container``/``lab.commit``/``lab.run`` and the exercise checks. A
chapter's reset forgets the names it no longer needs.

Plain Python, no engine: the table is per kernel (one learner, one lab).

>>> aliases.clear(); aliases.use("webserver", "webserver-lab")
>>> own("webserver"), own("web2")
('webserver-lab', 'web2')
>>> rewrite_args(["run", "--name", "webserver", "-d", "nginx:1.22"])
['run', '--name', 'webserver-lab', '-d', 'nginx:1.22']
>>> rewrite_args(["run", "--name=webserver", "busybox"])
['run', '--name=webserver-lab', 'busybox']
>>> rewrite_shell("docker rm $(docker ps -q -f name=webserver) webserver2")
'docker rm $(docker ps -q -f name=webserver-lab) webserver2'
>>> rewrite_bang_lines(["lines = !docker inspect webserver --format json", "print('webserver')"])
['lines = !docker inspect webserver-lab --format json', "print('webserver')"]
>>> aliases.use("nginx:1.22", "nginx:1.22-lab"); rewrite_bang_lines(["!docker pull -q nginx:1.22 >/dev/null"])
['%docker pull nginx:1.22']
>>> aliases.clear()
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Aliases", "aliases", "candidates", "own", "rewrite_args", "rewrite_bang_lines", "rewrite_shell"]


class Aliases(dict[str, str]):
    """book name -> the course's own name (only names the learner's objects hold)."""

    def use(self, book: str, mine: str) -> None:
        if book == mine:
            self.pop(book, None)
        else:
            self[book] = mine


aliases = Aliases()


def own(name: str) -> str:
    """The name the course uses for the book's ``name`` (the same name unless the learner holds it)."""
    return aliases.get(name, name)


def candidates(name: str, kind: str, limit: int = 20) -> list[str]:
    """The course's names for ``name``, in the order tried: ``webserver-lab``, ``webserver-lab2``…;
    an image keeps its repository and changes its tag (``nginx:v2`` -> ``nginx:v2-lab``).

    >>> candidates("webserver", "container", 3)
    ['webserver-lab', 'webserver-lab2', 'webserver-lab3']
    >>> candidates("nginx:v2", "image", 2), candidates("127.0.0.1:5100/course/busybox", "image", 1)
    (['nginx:v2-lab', 'nginx:v2-lab2'], ['127.0.0.1:5100/course/busybox:latest-lab'])
    """
    if kind == "image":
        slash = name.rfind("/")
        colon = name.rfind(":")
        repo, tag = (name[:colon], name[colon + 1:]) if colon > slash else (name, "latest")
        return [f"{repo}:{tag}-lab{'' if i == 1 else i}" for i in range(1, limit + 1)]
    return [f"{name}-lab{'' if i == 1 else i}" for i in range(1, limit + 1)]


def rewrite_args(args: list[str]) -> list[str]:
    """Each argument that is a book name the learner holds becomes the course's (also ``--name=X``)."""
    if not aliases:
        return args
    out = []
    for a in args:
        if a in aliases:
            a = aliases[a]
        elif a.startswith("-") and "=" in a:
            opt, _, val = a.partition("=")
            if val in aliases:
                a = f"{opt}={aliases[val]}"
        out.append(a)
    return out


_EDGE = r"[\w./:@-]"


def rewrite_shell(line: str) -> str:
    """The same for a shell line: whole words only (``webserver2`` stays ``webserver2``)."""
    for book in sorted(aliases, key=len, reverse=True):
        line = re.sub(rf"(?<!{_EDGE}){re.escape(book)}(?!{_EDGE})", _const(aliases[book]), line)
    return line


def _const(value: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: value


# A shell escape that runs docker: `!docker …`, `!!docker …`, `x = !docker …`.
_BANG_DOCKER = re.compile(r"^(\s*(?:[\w.]+\s*=\s*)?!!?)(\s*docker\b.*)$", re.S)
_PY_EXPR = re.compile(r"(\{[^{}]*\})")  # `!` expands {expr} from Python: those are not names


def rewrite_bang_lines(lines: list[str]) -> list[str]:
    """IPython input transformer (``input_transformers_cleanup``): the book's names in a cell's
    ``!docker`` lines become the course's, as in ``%docker`` lines. A ``{python}`` expression stays."""
    if not aliases:
        return lines
    out = []
    for line in lines:
        m = _BANG_DOCKER.match(line)
        if m:
            held = _pulled_and_held(m.group(2))
            if held:  # a pull would move the learner's name: `%docker pull` pulls the course's copy under its own
                end = "\n" if line.endswith("\n") else ""
                line = m.group(1).rstrip("!") + f"%docker pull {held}{end}"
            else:
                parts = _PY_EXPR.split(m.group(2))
                line = m.group(1) + "".join(p if i % 2 else rewrite_shell(p) for i, p in enumerate(parts))
        out.append(line)
    return out


def _pulled_and_held(command: str) -> str | None:
    """The book name a ``docker pull`` / ``docker image pull`` command names that the learner holds."""
    import shlex

    try:
        args = shlex.split(command)
    except ValueError:
        return None
    sub = args[1:3] if args[1:2] == ["image"] else args[1:2]
    if sub[-1:] != ["pull"]:
        return None
    return next((a for a in args[1 + len(sub):] if a in aliases), None)
