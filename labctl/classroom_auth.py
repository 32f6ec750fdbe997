"""The classroom's JupyterHub login: the names ``./lab classroom up`` made, each with the password it
printed once; the Hub (``dlhub``) checks it against an scrypt hash in a file only it can read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from .classroom import verify


class ClassroomAuthenticator(Authenticator):  # type: ignore[misc]
    password_file = Unicode(help="JSON: name -> scrypt hash (labctl.classroom)").tag(config=True)

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = (data.get("username") or "").strip().lower()
        try:
            known = json.loads(Path(self.password_file).read_text())
        except (OSError, ValueError):
            self.log.error("classroom password file %s is unreadable", self.password_file)
            return None
        stored = known.get(name)
        if stored and verify(data.get("password") or "", stored):
            return name
        return None
