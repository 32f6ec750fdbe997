"""Which accelerator: KVM when a short test boot with it really works, else TCG (software)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VMError
from .assets import VMAssets
from .qemu import boot

__all__ = ["AccelProbe", "probe_accel"]


@dataclass(frozen=True)
class AccelProbe:
    accel: str  # "kvm" or "tcg"
    note_key: str  # "" when KVM works, else why TCG is used
    note_kwargs: dict[str, str] = field(default_factory=dict)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "?"


def probe_accel(assets: VMAssets, cache_dir: Path | None = None, timeout: float = 4.0) -> AccelProbe:
    """KVM if a short test boot with it reaches the marker, else TCG; remembered per host boot."""
    kvm = Path("/dev/kvm")
    if not (kvm.exists() and os.access(kvm, os.R_OK | os.W_OK)):
        return AccelProbe("tcg", "vm.kvm_absent")
    key = f"{_boot_id()}:{assets.kernel_version}"
    memo = cache_dir / "accel.json" if cache_dir else None
    if memo and memo.is_file():
        try:
            saved = json.loads(memo.read_text())
            if saved.get("key") == key:
                return AccelProbe(saved["accel"], saved["note_key"], saved["note_kwargs"])
        except (OSError, ValueError, KeyError):
            pass
    try:
        boot(assets, accel="kvm", timeout=timeout, retries=0).stop()
        result = AccelProbe("kvm", "")
    except VMError as e:
        result = AccelProbe("tcg", "vm.kvm_broken",
                            {"seconds": f"{timeout:g}", "detail": e.kwargs.get("detail", "hang")})
    if memo:
        memo.write_text(json.dumps({"key": key, "accel": result.accel, "note_key": result.note_key,
                                    "note_kwargs": result.note_kwargs}))
    return result
