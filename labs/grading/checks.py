"""What the lab notebooks call to check their work against the real engine.

``self_check(name, *answers)`` runs a check in the kernel and shows ✔/✘ with a reason.
``independently(name, *answers)`` is the hidden tests' call. While ``./lab grade`` grades, it asks
the sandbox's check service (``labs.grading.checkd``, root's process outside the submission, named by
``DOCKERLAB_CHECKD``) to run the check against the engine; the grade is what that service recorded,
whatever the kernel does with the answer. On a learner's own lab it runs the check in a fresh
Python process. Answers travel as JSON.

>>> Verdict(True, "ok").ok
True
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labctl.state import load_state

from .messages import t

__all__ = [
    "CHECKS",
    "Verdict",
    "check",
    "client",
    "independently",
    "mirror_address",
    "must",
    "published_url",
    "registry_address",
    "self_check",
]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"{'✔' if self.ok else '✘'} {self.reason}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": str(self)}

    def assert_ok(self) -> Verdict:
        if not self.ok:
            raise AssertionError(self.reason)
        return self


def must(result: Any) -> None:
    """Show a check's ✔/✘ line; raise AssertionError(reason) if it failed (nbgrader: 0 points).

    Works for :class:`Verdict` and for kernel_ext's ``CheckResult`` alike.
    """
    ok, reason = bool(result.ok), str(result.reason)
    print(f"{'✔' if ok else '✘'} {reason}")
    if not ok:
        raise AssertionError(reason)


CheckFn = Callable[..., Verdict]
CHECKS: dict[str, CheckFn] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``name`` (``lab3.serve``)."""

    def deco(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        return fn

    return deco


_CLIENT: list[Any] = []


def client() -> Any:
    """docker-py client for the engine this kernel works with (DOCKER_HOST, else the lab's)."""
    import docker

    if not _CLIENT:
        host = os.environ.get("DOCKER_HOST") or load_state().docker_host
        _CLIENT.append(docker.DockerClient(base_url=host, timeout=60))
    return _CLIENT[0]


def registry_address() -> str:
    """host:port of the registry learners push to: their own (the course's upstream is read-only);
    a private one while grading."""
    st = load_state()
    return st.registry or st.upstream or "127.0.0.1:5000"


def mirror_address() -> str:
    return load_state().mirror or "127.0.0.1:5001"


def published_url(container: str, port: int = 80, path: str = "/") -> str:
    """``http://ip:port/`` where ``container``'s ``port`` is published on this host."""
    c = client().containers.get(container)
    bindings = (c.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    if not bindings:
        raise LookupError(f"{container}: {port}/tcp is not published")
    ip = bindings[0]["HostIp"] or "127.0.0.1"
    ip = "127.0.0.1" if ip in ("0.0.0.0", "::") else ip
    return f"http://{ip}:{bindings[0]['HostPort']}{path}"


def _load_tasks() -> None:
    from . import tasks  # noqa: F401  (registers the checks)


def self_check(name: str, *answers: Any) -> Verdict:
    """Run check ``name`` here, in the kernel; while grading, the check service runs it (and records it)."""
    service = os.environ.get("DOCKERLAB_CHECKD")
    if service:
        return _ask_service(service, name, _plain(answers))
    _load_tasks()
    try:
        return CHECKS[name](client(), *_plain(answers))
    except Exception as e:  # a check never raises at a learner: it says what it could not do
        return Verdict(False, t("labs.check_crashed", err=f"{type(e).__name__}: {e}"))


def independently(name: str, *answers: Any) -> Verdict:
    """Run check ``name`` outside this kernel; raise AssertionError(reason) if it fails."""
    service = os.environ.get("DOCKERLAB_CHECKD")
    if service:
        return _ask_service(service, name, _plain(answers)).assert_ok()
    payload = json.dumps(_plain(answers), ensure_ascii=False)
    out = subprocess.run([sys.executable, "-m", "labs.grading.checks", name, payload],
                         capture_output=True, text=True, timeout=120, check=False)
    line = (out.stdout.strip().splitlines() or [out.stderr.strip()[-300:]])[-1]
    verdict = Verdict(out.returncode == 0, line[2:] if line[:1] in "✔✘" else line)
    return verdict.assert_ok()


def _ask_service(path: str, name: str, answers: list[Any]) -> Verdict:
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
        return Verdict(bool(reply["ok"]), str(reply["reason"]))
    except (OSError, ValueError, KeyError) as e:
        return Verdict(False, t("labs.check_crashed", err=f"{type(e).__name__}: {e}"))


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
    verdict = self_check(name, *payload)
    print(verdict)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    # run the package's module, not this __main__ copy, so tasks register into one CHECKS
    from labs.grading.checks import main as _main

    sys.exit(_main(sys.argv[1:]))
