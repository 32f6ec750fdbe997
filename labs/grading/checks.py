"""What the lab notebooks call to check their work against the real engine.

``self_check(name, *answers)`` runs a check in the kernel and shows ✔/✘ with a reason.
``independently(name, *answers)`` is the hidden tests' call. While ``./lab grade`` grades, it asks
the sandbox's check service (``asroot.grading.checkd``, root's process outside the submission, named by
``DOCKERLAB_CHECKD``) to run the check against the engine; the grade is what that service recorded,
whatever the kernel does with the answer. On a learner's own lab it runs the check in a fresh
Python process (``python -m labs.grading.checks NAME JSON``). Answers travel as JSON.
Every result is kernel_ext's :class:`~kernel_ext.check.CheckResult`, the course's one check vocabulary.

>>> must(CheckResult(True, "ok"))
✔ ok
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from labcore.distribution import Unreachable

from labs.grading import tasks  # noqa: F401  (registers the checks)
from labs.grading.checklist import CHECKS, CheckResult
from labs.grading.engine import client, mirror_address, published_url, registry_address
from labs.grading.messages import t

__all__ = [
    "CHECKS",
    "CheckResult",
    "client",
    "independently",
    "mirror_address",
    "must",
    "published_url",
    "registry_address",
    "self_check",
]


def must(result: CheckResult) -> None:
    """Show a check's ✔/✘ line; raise AssertionError(reason) if it failed (nbgrader: 0 points)."""
    print(result)
    result.assert_ok()


def self_check(name: str, *answers: Any) -> CheckResult:
    """Run check ``name`` here, in the kernel; while grading, the check service runs it (and records it)."""
    service = os.environ.get("DOCKERLAB_CHECKD")
    if service:
        return _ask_service(service, name, _plain(answers))
    try:
        return CHECKS[name](client(), *_plain(answers))
    except Unreachable as e:
        return CheckResult(False, t("labs.registry_down", err=e))
    except Exception as e:  # a check never raises at a learner: it says what it could not do
        return CheckResult(False, t("labs.check_crashed", err=f"{type(e).__name__}: {e}"))


def independently(name: str, *answers: Any) -> CheckResult:
    """Run check ``name`` outside this kernel; raise AssertionError(reason) if it fails."""
    service = os.environ.get("DOCKERLAB_CHECKD")
    if service:
        result = _ask_service(service, name, _plain(answers))
    else:
        payload = json.dumps(_plain(answers), ensure_ascii=False)
        out = subprocess.run([sys.executable, "-m", "labs.grading.checks", name, payload],
                             capture_output=True, text=True, timeout=120, check=False)
        line = (out.stdout.strip().splitlines() or [out.stderr.strip()[-300:]])[-1]
        result = CheckResult(out.returncode == 0, line[2:] if line[:1] in "✔✘" else line)
    result.assert_ok()
    return result


def _ask_service(path: str, name: str, answers: list[Any]) -> CheckResult:
    import socket

    request = json.dumps({"check": name, "answers": answers}, ensure_ascii=False) + "\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(150)
            s.connect(path)
            s.sendall(request.encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data.decode())
        return CheckResult(bool(reply["ok"]), str(reply["reason"]))
    except (OSError, ValueError, KeyError) as e:
        return CheckResult(False, t("labs.check_crashed", err=f"{type(e).__name__}: {e}"))


def _plain(value: Any) -> Any:
    """Answers as JSON would bring them back (sets become sorted lists)."""
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def main(argv: list[str]) -> int:
    name, payload = argv[0], json.loads(argv[1]) if len(argv) > 1 else []
    result = self_check(name, *payload)
    print(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
