"""The labs' checks by name: :mod:`labs.grading.tasks` registers them, :mod:`labs.grading.checks`
and the check service run them. A check takes a docker-py client and the learner's answers and
returns kernel_ext's :class:`~kernel_ext.check.CheckResult`.

>>> @check("demo.always")
... def _demo(client, answer=None):
...     return CheckResult(answer == 42, "the answer")
>>> CHECKS["demo.always"](None, 42).ok
True
>>> del CHECKS["demo.always"]
"""

from __future__ import annotations

from collections.abc import Callable

from kernel_ext.check import CheckResult

__all__ = ["CHECKS", "CheckFn", "CheckResult", "check"]

CheckFn = Callable[..., CheckResult]
CHECKS: dict[str, CheckFn] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``name`` (``lab3.serve``)."""

    def deco(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        return fn

    return deco
