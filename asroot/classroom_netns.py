"""Root's part of the classroom's network isolation: one network namespace per class member (only
``lo``), one port per member on the host's loopback for the Hub's proxy, and the one relay process
(``asroot.classroom_relay``) that joins them. Made by ``classroom up``/``add``, removed by ``down``.

Why a namespace per member: a rootless engine's published ports are bound by RootlessKit in the
namespace it was started from, and slirp4netns's ``10.0.2.2`` is that namespace's loopback. Started
from the host's, every learner could reach every other learner's published ports and registry, and
everything else on the host's loopback. Started from a namespace of their own, they reach their own
and, through the relay, the Hub's API and the read-only course mirror, nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from labcore import safefs
from pathlib import Path

from labcore import proc

__all__ = ["NETNS_DIR", "allocate_ports", "ensure", "netns_path", "relay_argv", "remove", "start_relay",
           "stop_relay"]

NETNS_DIR = Path("/run/netns")  # where `ip netns add` keeps the namespaces (bind mounts, no process)
RELAY_MARKER = "asroot.classroom_relay"


def netns_path(prefix: str, member: str) -> Path:
    return NETNS_DIR / f"{prefix}-{member}"


def ensure(prefix: str, member: str) -> Path:
    """Root: the member's namespace, with its loopback up (idempotent)."""
    path = netns_path(prefix, member)
    if not path.exists():
        subprocess.run(["ip", "netns", "add", path.name], check=True, capture_output=True)
    subprocess.run(["ip", "-n", path.name, "link", "set", "lo", "up"], check=True, capture_output=True)
    return path


def remove(prefix: str, member: str) -> None:
    path = netns_path(prefix, member)
    if path.exists():
        subprocess.run(["ip", "netns", "del", path.name], check=False, capture_output=True)


def allocate_ports(members: list[str], taken: dict[str, int], avoid: set[int], start: int = 8400) -> dict[str, int]:
    """One free host port per member for the proxy's side of the relay; members keep theirs."""
    out = {m: p for m, p in taken.items() if m in members}
    used = set(out.values()) | avoid
    port = start
    for m in members:
        if m in out:
            continue
        while port in used or not proc.port_free(port):
            port += 1
        out[m] = port
        used.add(port)
    return out


def relay_argv(prefix: str, ports: dict[str, int], inward: list[int], user: str) -> list[str]:
    return [sys.executable, "-I", "-m", RELAY_MARKER, "--user", user, *(f"--inward={p}" for p in inward),
            *(f"{netns_path(prefix, m)}={p}" for m, p in sorted(ports.items()))]


def start_relay(argv: list[str], pidfile: Path, log: Path, env: dict[str, str]) -> bool:
    """Root: (re)start the relay unless it already runs with exactly ``argv``. True if started now."""
    running = proc.running_pid(pidfile, RELAY_MARKER)
    if running and proc.cmdline(running) == [a.encode() for a in argv]:
        return False
    proc.stop(pidfile, RELAY_MARKER)
    start = log.stat().st_size if log.exists() else 0
    pid = proc.start(argv, pidfile, log, env=env, exact_env=True)
    proc.wait_for(lambda: "relaying" in safefs.read_private(log, start + (1 << 20)).decode(errors="replace")[start:],
                  30, "The classroom's relay", log, pid=pid)
    return True


def stop_relay(pidfile: Path) -> bool:
    return proc.stop(pidfile, RELAY_MARKER)
