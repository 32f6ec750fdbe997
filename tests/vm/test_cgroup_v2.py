"""The cgroup v2 path, proven where it exists: a Debian 12 VM booted with cgroup v2 only and systemd
as init (qemu, TCG), in which root runs the lab's one-time step and the lab's account starts the lab's
rootless engine with labctl's own code (tests/vm/guest_check.py). Every assertion reads what the guest
measured; nothing here talks to a mock. The guest also runs chapter 1's own ``docker run -m 64m`` line, and
the function chapter 1 renders its cgroup sentence with is fed what the guest reported (what a learner on
cgroup v2 reads; ``tests/vm/chapter1_view.py`` photographs it).

Then, in the same boot, root grades lab 4 through the grading runner (tests/vm/guest_grade.py: what
``./lab grade autograde`` does but nbgrader's export and feedback; two submissions at a time, one honest,
one fork bomb, their engines started one after the other), and the cgroup v2 knobs of each live sandbox
are read while its kernel runs.

Root only (mmdebstrap and the one-time step in the guest need it): root's ``./lab test`` starts it in a
pytest process of its own as soon as ``./lab up`` has made what it needs (the engine tree, the course
registry's images), beside the account's suite and then tests/host; its report follows tests/host's.
Cold, the VM's disk is built first (mmdebstrap, a few minutes; cached by content hash under root's
~/.cache/dockerlab/vm-cgroup2); warm, only the project's disk is made again.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import vmimage

from asroot.grading.sandbox import Limits

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


def test_chapter_1_tells_a_learner_on_cgroup_v2_that_the_limit_applies(vm: vmimage.VMRun) -> None:
    """Chapter 1's 1.3 on a cgroup v2 + systemd host: the chapter's own ``docker run -m 64m … cat memory.max``
    line ran in the guest, and the function the chapter's next cell calls renders what a learner there reads."""
    from kernel_ext.hostfacts import memory_limit
    from kernel_ext.messages import t

    r = vm.results
    assert r["ch01_args"].startswith("run --rm -m 64m "), r.get("ch01_args")
    assert r["ch01_read"] == "67108864", r["ch01_read"]  # memory.max, the v2 file (no v1 memory.limit_in_bytes)
    said = memory_limit(r["info_cgroup_version"], r["info_cgroup_driver"], r["ch01_read"], lang="zh")
    assert said.startswith("这台机器：cgroup v2，驱动 systemd。"), said
    assert "容器里读到 67108864，正是 64 MiB：上限生效了" in said
    v1 = t("host.cg.ignored", lang="zh", read="9223372036854771712", want=64 << 20)
    assert v1.split("：")[0] not in said and "忽略" not in said  # not the v1 host's sentence
    assert memory_limit(r["info_cgroup_version"], r["info_cgroup_driver"], r["ch01_read"], lang="en") \
        .startswith("This machine: cgroup v2, driver systemd.")


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


def test_a_classroom_members_cgroup_is_roots_own_and_the_gate_refuses_without_one(vm: vmimage.VMRun) -> None:
    """cgroup v2 under systemd: a class member's limits come from a cgroup root makes (no user manager,
    no linger: a member's user manager would run outside their network namespace and limits)."""
    r = vm.results
    assert r.get("member_cgroup") == "True", r
    assert (r["member_memory.max"], r["member_memory.swap.max"], r["member_pids.max"]) == (str(512 << 20), "0", "256")
    assert r["member_linger"] == "False" and r["member_user_manager"] != "active"
    assert r["member_entered"] == "0::/dockerlab-dlclass-vm/session", r["member_entered"]
    assert r["member_strict_refuses"] == "True"


# -- ./lab grade in the VM (guest_check.grade_main): lab 4, an honest submission and a fork bomb -------
def test_grading_runs_on_cgroup_v2(vm: vmimage.VMRun) -> None:
    r = vm.results
    # not graded: what the console said from the grading's start (heartbeats, stacks of a hung batch)
    assert r.get("grade_rc") == "0", "\n".join(vm.lines[-120:])
    assert r["grade_sandboxes"] == "dlgrade1,dlgrade2"  # two at a time (guest_grade.JOBS), on pool accounts
    assert (r["not_graded_alice_lab4"], r["not_graded_bomber_lab4"]) == ("False", "False"), \
        (r.get("problem_alice_lab4"), r.get("problem_bomber_lab4"), r.get("grade_engine_log"))


def test_the_honest_submission_gets_full_marks(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert r["score_alice_lab4"] == "4 4 2", r.get("reasons_alice_lab4")
    assert r["problem_alice_lab4"] == "none"


def test_the_fork_bomb_keeps_what_its_honest_part_earns_and_meets_the_pids_limit(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert r["score_bomber_lab4"] == "4 4 0", r.get("reasons_bomber_lab4")  # task 3's answer is the bomb
    assert json.loads(r["limit_hits_bomber_lab4"]).get("pids", 0) > 0
    assert json.loads(r["limit_hits_alice_lab4"]).get("pids", 0) == 0  # the honest one never met it
    for acct in r["grade_sandboxes"].split(","):
        assert int(r[f"sandbox_{acct}_pids_peak"]) <= Limits().pids  # pids.current never passed pids.max


def test_the_second_engine_starts_once_the_first_answers_and_the_gradings_overlap(vm: vmimage.VMRun) -> None:
    """The runner's stagger: two engines starting together on the emulated CPU miss containerd's 15 s."""
    first, second = sorted((json.loads(vm.results[f"timings_{s}_lab4"]) for s in ("alice", "bomber")),
                           key=lambda t: t["gate_passed"])
    assert second["gate_passed"] >= first["autograde_started"]  # set-up and engine start after READY
    assert second["autograde_started"] < first["ended"]  # and both submissions ran at the same time


def test_a_live_sandbox_has_every_v2_limit(vm: vmimage.VMRun) -> None:
    """Read from /sys/fs/cgroup while the submission's kernel ran inside the sandbox."""
    r, lim = vm.results, Limits()
    for acct in r["grade_sandboxes"].split(","):
        knob = {k.removeprefix(f"sandbox_{acct}_"): v for k, v in r.items() if k.startswith(f"sandbox_{acct}_")}
        assert knob["memory.max"] == str(lim.memory_mb << 20)
        assert knob["memory.swap.max"] == "0"
        assert knob["pids.max"] == str(lim.pids)
        assert knob["cpu.max"] == f"{int(100_000 * lim.cpus)} 100000"
        dev, *rest = knob["io.max"].split()
        bps = lim.io_mbps << 20
        assert re.fullmatch(r"\d+:\d+", dev) and rest == [f"rbps={bps}", f"wbps={bps}", "riops=max", "wiops=max"]
        assert set(knob["cgroup.subtree_control"].split()) >= {"memory", "pids", "cpu", "io"}
        assert knob["ctr/pids.max"] == str(lim.container_pids)
        # the submission's kernel and its engine run as the account, inside the sandbox's leaf
        uid = knob["kernel_uid"]
        assert uid == knob["engine_uid"] == knob["procs_owner"] and uid != "0"
        assert knob["engine_cgroup"] == f"0::/dockerlab-grade-{acct}/work"
        assert knob["knobs_owner"] == "0"  # the limits stay root's


def test_grading_leaves_nothing_in_the_vm(vm: vmimage.VMRun) -> None:
    r = vm.results
    assert (r["grade_left_cgroups"], r["grade_left_mounts"], r["grade_left_procs"]) == ("none", "none", "0")
