"""The course kernel's one spec (``dockerlab``), for every place that installs it: a lab home
(:func:`labctl.jupyter.install_kernel`: the learner's, the tests', the course image's, a classroom
member's) and a grading sandbox (:mod:`grader.worker`)."""

from __future__ import annotations

import sys

__all__ = ["DISPLAY_NAME", "KERNEL_START", "NAME", "spec"]

NAME = "dockerlab"
DISPLAY_NAME = "Docker Lab (Python 3)"

# ipykernel, made the first thing the out-of-memory killer takes when a learner's cells fill their memory limit
# (a classroom member's cgroup, the course image's container, a grading sandbox): a kernel the server restarts,
# not the learner's Jupyter server (every open notebook), their engine, or the grader's nbgrader. Measured on a
# fresh machine: a 3 GiB cell, the hog already dying but its memory not yet freed, and the next victim was the
# server. Raising one's own oom_score_adj (500 above what started it) needs no privilege.
KERNEL_START = ("import runpy\n"
                "try:\n"
                "    with open('/proc/self/oom_score_adj') as f:\n"
                "        adj = min(1000, int(f.read()) + 500)\n"
                "    with open('/proc/self/oom_score_adj', 'w') as f:\n"
                "        f.write(str(adj))\n"
                "except (OSError, ValueError):\n"
                "    pass\n"
                "runpy.run_module('ipykernel_launcher', run_name='__main__', alter_sys=True)\n")


def spec(env: dict[str, str], *, debugger: bool = True) -> dict[str, object]:
    """``kernel.json``'s content: this Python's ipykernel (started by :data:`KERNEL_START`) with ``env``."""
    out: dict[str, object] = {
        "argv": [sys.executable, "-c", KERNEL_START, "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "env": env,
    }
    if debugger:
        out["metadata"] = {"debugger": True}
    return out
