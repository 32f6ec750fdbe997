"""The project's one error for the person at a terminal (launcher, grader, classroom, root's wing).

Learners in a notebook get :class:`kernel_ext.errors.LabError` instead (translated, per engine error).
"""

from __future__ import annotations

__all__ = ["LabFailure"]


class LabFailure(Exception):
    """One sentence for the person at the terminal: what went wrong and what to do."""
