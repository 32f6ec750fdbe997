"""The classroom's JupyterHub login: the names ``./lab classroom up`` made, each with the password it
printed once; the Hub (``dlhub``) checks it against an scrypt hash in a file only it can read.

scrypt costs ~0.1 s of CPU by design: it runs in a thread, ``VERIFY_AT_ONCE`` at a time, never on the
Hub's event loop (which serves every learner's page), and a name that failed ``FREE_FAILURES`` times is
refused without a check for a delay that doubles with each further failure (at most ``MAX_DELAY``)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from classroom.config import verify

VERIFY_AT_ONCE = 2
FREE_FAILURES = 5
MAX_DELAY = 300.0
MAX_PASSWORD = 1024


class ClassroomAuthenticator(Authenticator):  # type: ignore[misc]
    password_file = Unicode(help="JSON: name -> scrypt hash (asroot.classroom)").tag(config=True)
    class_config = Unicode(help="the classroom's root-owned classroom.json (who is a member)").tag(config=True)

    def _known(self) -> dict[str, str]:
        try:
            return dict(json.loads(Path(self.password_file).read_text()))
        except (OSError, ValueError):
            self.log.error("classroom password file %s is unreadable", self.password_file)
            return {}

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        """The class's members as root's ``classroom.json`` lists them now: ``classroom add`` writes one
        more there, and the running Hub lets them in without a restart (which would stop every server)."""
        try:
            cfg = json.loads(Path(self.class_config).read_text())
        except (OSError, ValueError):
            self.log.error("classroom configuration %s is unreadable", self.class_config)
            return False
        return username in {*cfg.get("learners", []), cfg.get("instructor")}

    _verifying: asyncio.Semaphore | None = None
    _failures: dict[str, tuple[int, float]] | None = None  # known name -> (failures, refused until)

    def _backed_off(self, name: str) -> bool:
        assert self._failures is not None
        count, until = self._failures.get(name, (0, 0.0))
        if time.monotonic() < until:
            self.log.warning("login as %s refused without a check: %d failed attempts", name, count)
            return True
        return False

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        if self._verifying is None or self._failures is None:
            self._verifying, self._failures = asyncio.Semaphore(VERIFY_AT_ONCE), {}
        name = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        stored = self._known().get(name)
        if not stored or len(password) > MAX_PASSWORD or self._backed_off(name):
            return None
        async with self._verifying:
            if self._backed_off(name):  # failures recorded while this attempt waited
                return None
            ok = await asyncio.to_thread(verify, password, stored)
        if ok:
            self._failures.pop(name, None)
            return name
        count = self._failures.get(name, (0, 0.0))[0] + 1
        delay = min(MAX_DELAY, 2.0 ** (count - FREE_FAILURES)) if count >= FREE_FAILURES else 0.0
        self._failures[name] = (count, time.monotonic() + delay)
        return None
