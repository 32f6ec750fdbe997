"""Image references as the engine understands them (distribution's reference grammar).

>>> parse("nginx").familiar
'nginx:latest'
>>> parse("127.0.0.1:5000/course/web:v2").repository
'127.0.0.1:5000/course/web'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BadReference

__all__ = ["Reference", "is_image_id", "parse"]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_REF = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)
_ID = re.compile(r"^(?:sha256:)?[0-9a-f]{4,64}$")


@dataclass(frozen=True)
class Reference:
    domain: str  # "" means Docker Hub (docker.io)
    path: str
    tag: str
    digest: str

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path.removeprefix("library/")

    @property
    def familiar(self) -> str:
        """How ``docker image ls`` shows it: ``nginx:latest``, ``127.0.0.1:5000/x/y:v1``."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"

    @property
    def hub_path(self) -> str:
        """The path in a registry (``library/nginx``) for a Docker Hub name."""
        return self.path if "/" in self.path else f"library/{self.path}"


def parse(ref: str) -> Reference:
    m = _REF.match(ref.strip()) if ref else None
    if not m:
        raise BadReference("ref.bad", ref=ref)
    domain = m.group("domain") or ""
    # "nginx/web" has no domain; a first part with "." or ":" or "localhost" is a domain.
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        return Reference("", f"{domain}/{m.group('path')}", m.group("tag") or "", m.group("digest") or "")
    if domain in ("docker.io", "index.docker.io"):
        domain = ""
    return Reference(domain, m.group("path"), m.group("tag") or "", m.group("digest") or "")


def is_image_id(text: str) -> bool:
    return bool(_ID.match(text))
