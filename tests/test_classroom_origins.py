"""The classroom's origins as ``classroom up`` writes them into the Hub's configuration: each member's
server on a host name of its own by default, a room's name, TLS, and the explicit opt-out (the browser
test that attacks them is tests/host/test_classroom.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asroot.classroom import hub_config
from classroom.config import ClassConfig, hub_host
from labcore.errors import LabFailure


def _conf(host: str) -> dict[str, object]:
    cfg = ClassConfig(learners=["learner1"], host=host, port=8000, mirror="127.0.0.1:5200")
    text = hub_config(cfg, Path("/nonexistent/chp"), 8081, 8001, 8071)

    class C(dict):  # type: ignore[type-arg]
        def __getattr__(self, name: str) -> C:
            return self.setdefault(name, C())

        def __setattr__(self, name: str, value: object) -> None:
            self[name] = value

    c = C()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})  # noqa: S102 -- our own text
    return dict(c.JupyterHub)


def test_each_server_has_an_origin_of_its_own_unless_the_instructor_opts_out() -> None:
    local = _conf(hub_host("127.0.0.1", None))
    assert local["subdomain_host"] == "http://localhost:8000" and "cookie_host_prefix_enabled" not in local
    room = _conf(hub_host("0.0.0.0", "https://hub.school.example"))
    assert room["subdomain_host"] == "https://hub.school.example" and room["cookie_host_prefix_enabled"] is True
    assert "subdomain_host" not in _conf(hub_host("0.0.0.0", ""))
    with pytest.raises(LabFailure, match="--host NAME"):
        hub_host("0.0.0.0", None)  # a room's network without a name: one clear sentence, no silent one origin
    with pytest.raises(LabFailure, match="not a host name"):
        hub_host("0.0.0.0", "hub school")
    assert ClassConfig(host="localhost", port=8000).url == "http://localhost:8000/"
    assert ClassConfig(ip="10.0.0.5", port=8000).server_url("learner1") == "http://10.0.0.5:8000/user/learner1/"
