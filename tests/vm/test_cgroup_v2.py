"""The cgroup v2 path, proven where it exists: a Debian 12 VM booted with cgroup v2 only and systemd
as init (qemu, TCG), in which root runs the lab's one-time step and the lab's account starts the lab's
rootless engine with labctl's own code (tests/vm/guest_check.py). Every assertion reads what the guest
measured; nothing here talks to a mock.

Root only (mmdebstrap and the one-time step in the guest need it): root's ``./lab test`` runs it after
tests/host. Cold, the VM's disk is built first (mmdebstrap, a few minutes; cached by content hash under
root's ~/.cache/dockerlab/vm-cgroup2); warm, only the project's disk is made again.
"""

from __future__ import annotations

import os

import pytest
import vmimage

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

if os.geteuid() != 0:
    pytest.skip("the cgroup v2 VM is built and checked by root's ./lab test", allow_module_level=True)


@pytest.fixture(scope="module")
def vm() -> vmimage.VMRun:
    run = vmimage.run_check()
    log = vmimage.cache_dir() / "last-console.log"  # run_check keeps the last console and results
    print(f"\nVM console: {log}; timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in run.timings.items()))
    assert "root_check_s" in run.results, f"the check did not finish in the VM; console:\n{run.tail()}"
    return run


def test_the_vm_has_cgroup_v2_only_and_systemd(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert (r["init"], r["hierarchy"], r["v1_mounted"]) == ("systemd", "v2", "False")


def test_the_one_time_step_starts_the_accounts_user_manager_with_the_labs_limits(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert r["setup_rc"] == "0", r.get("setup")
    assert (r["linger"], r["user_manager"], r["user_bus"]) == ("True", "active", "True")
    assert r["raw_cgroup"] == "False"  # under systemd the lab makes no cgroup of its own beside systemd's
    assert r["manager_memory.max"].isdigit() and r["manager_pids.max"] == "8192"
    assert {"memory", "pids", "cpu"} <= set(r["manager_cgroup.subtree_control"].split())


def test_the_engine_is_rootless_on_cgroup_v2_with_the_systemd_driver(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert r.get("start_rc") == "0", [v for k, v in r.items() if k.startswith("engine_")]
    assert r["whoami"] == f"dockerlab:{r['account_uid']}"
    assert (r["engine_systemd"], r["info_rootless"]) == ("True", "True")
    assert (r["info_cgroup_version"], r["info_cgroup_driver"]) == ("2", "systemd")
    assert r["info_store"] == "io.containerd.snapshotter.v1"


def test_docker_run_limits_apply_and_act(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert r["limited"] == "67108864 50"  # docker run -m 64m --pids-limit 50: memory.max, pids.max
    assert r["unlimited"].split()[0] == "max"  # and without them, no limit
    assert r["oom_rc"] == "137" and r["no_limit_dd_rc"] == "0"  # 48 MiB in a 32 MiB container is killed
    assert 0 < int(r["pids_started"]) < 10  # the shell is one of the 10 under --pids-limit 10


def test_the_engine_and_its_containers_run_inside_the_labs_limited_cgroup_never_as_root(vm: vmimage.VMRun) -> None:
    r = vm.results
    manager = f"/user.slice/user-{r['account_uid']}.slice/user@{r['account_uid']}.service/"
    assert r["engine_cgroup"].startswith(manager) and r["engine_cgroup"].endswith("-lab.scope")
    assert r["sleeper_cgroup"].startswith(manager) and "/docker-" in r["sleeper_cgroup"]
    assert r["engine_memory_limit"] == r["manager_memory.max"]  # the root-set lab limit holds the engine
    assert r["manager_proc_uids"] == r["account_uid"]
    assert r["engine_procs_as_root"] == "0" and r["engine_procs_outside_manager"] == "0"
    assert {"rootlesskit", "dockerd", "containerd", "slirp4netns"} <= \
        {p.split(":")[0] for p in r["engine_procs"].split(",")}


def test_doctor_tells_the_truth_about_limits(vm: vmimage.VMRun) -> None:
    line = vm.results["doctor_cgroup"]
    assert "cgroup v2, driver systemd: per-container limits" in line and " work;" in line
    assert f"limited to {int(vm.results['manager_memory.max']) >> 20} MiB" in line


def test_stopping_the_engine_leaves_nothing(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert (r["stop_rc"], r["engine_was_running"]) == ("0", "True")
    assert r["units_after_stop"] == "none" and r["left_after_stop"] == "none"
