"""Runs inside the cgroup v2 VM as root, with the grading venv's python (``guest_check.grade_main``
starts it once the course's mirror is up): what ``./lab grade autograde`` does around nbgrader's export
and feedback (pool accounts, sweep, the engine's root-owned copy, the gradebook templates, the runner,
the report) on lab 4's two submissions, two at a time with the engine starts one after the other
(the runner's ``stagger``), while a watcher reads each live sandbox's cgroup v2 knobs. Export and
feedback are left out: they are the same nbgrader commands on both hierarchies and take minutes under
emulation.

``guest_grade.py NONCE COURSE SUBMISSIONS OUT``; prints ``DLAB-VM <nonce> key=value`` lines.
"""

from __future__ import annotations

import faulthandler
import json
import os
import pwd
import sys
import threading
import time
from pathlib import Path

NONCE, COURSE, SUBMISSIONS, OUT = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
CGROUPS = Path("/sys/fs/cgroup")
# Two at a time, staggered: two engines *starting* together on the emulated CPU miss containerd's fixed
# 15 s window again and again (one run: 3 of 3 attempts), so the second sandbox is set up and starts its
# engine only once the first's has answered; then both submissions run.
JOBS = 2
KNOBS = ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "io.max", "cgroup.subtree_control",
         "ctr/pids.max", "ctr/memory.max")


def out(key: str, value: object) -> None:
    print(f"DLAB-VM {NONCE} {key}=" + " ".join(str(value).split()), flush=True)


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _uid_of(pid: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")))
    except (OSError, StopIteration, ValueError):
        return -1


def watch(stop: threading.Event, seen: dict[str, dict[str, str]]) -> None:
    """Each sandbox's knobs, read once its kernel (the submission's code) and its engine run inside,
    and the most processes its cgroup ever held."""
    while not stop.is_set():
        for top in CGROUPS.glob("dockerlab-grade-*"):
            info = seen.setdefault(top.name.removeprefix("dockerlab-grade-"), {"pids_peak": "0"})
            try:
                pids = (top / "work" / "cgroup.procs").read_text().split()
                current = int((top / "pids.current").read_text())
            except (OSError, ValueError):
                continue
            info["pids_peak"] = str(max(int(info["pids_peak"]), current))
            if "memory.max" in info:
                continue
            cmds = {pid: _cmdline(pid) for pid in pids}
            kernel = [pid for pid, c in cmds.items() if "ipykernel_launcher" in c]
            engine = [pid for pid, c in cmds.items() if c.split(" ")[0].endswith("dockerd")]
            if not kernel or not engine:
                continue
            for knob in KNOBS:
                try:
                    info[knob] = (top / knob).read_text().strip() or "(empty)"
                except OSError as e:
                    info[knob] = f"unreadable ({e.strerror})"
            info["kernel_uid"] = str(_uid_of(kernel[0]))
            info["engine_uid"] = str(_uid_of(engine[0]))
            try:
                info["engine_cgroup"] = Path(f"/proc/{engine[0]}/cgroup").read_text().strip()
            except OSError:
                info["engine_cgroup"] = "?"
            info["procs_owner"] = str(os.stat(top / "work" / "cgroup.procs").st_uid)
            info["knobs_owner"] = str(os.stat(top / "pids.max").st_uid)
        stop.wait(0.5)


def _blocked() -> str:
    """Processes in uninterruptible sleep (D), by name: what a hung grading waits on."""
    names = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2:].startswith("D"):
            names.append(stat[stat.find("(") + 1:stat.rfind(")")])
    return ",".join(sorted(names)) or "none"


def heartbeat(stop: threading.Event, t0: float) -> None:
    """Every minute while grading: the guest's memory, its pressure, what is blocked, each sandbox's size;
    every 10 minutes every thread's stack too (a hung batch says where it hangs)."""
    faulthandler.dump_traceback_later(600, repeat=True, file=sys.stderr)
    try:
        while not stop.wait(60):
            mem = dict(ln.split(":", 1) for ln in Path("/proc/meminfo").read_text().splitlines())
            psi = Path("/proc/pressure/memory").read_text().split("\n")[1].split()[1] \
                if Path("/proc/pressure/memory").exists() else "?"
            boxes = []
            for top in CGROUPS.glob("dockerlab-grade-*"):
                try:
                    boxes.append(f"{top.name[16:]}:pids={(top / 'pids.current').read_text().strip()},"
                                 f"mem={int((top / 'memory.current').read_text()) >> 20}M")
                except (OSError, ValueError):
                    boxes.append(f"{top.name[16:]}:?")
            out("grade_heartbeat", f"{time.monotonic() - t0:.0f}s avail={mem['MemAvailable'].strip()} "
                f"psi_full={psi} load={os.getloadavg()[0]:.1f} D={_blocked()} {' '.join(boxes) or 'no-sandbox'}")
    finally:
        faulthandler.cancel_dump_traceback_later()


def main() -> int:
    from asroot import gradeaccounts
    from labcore.state import REPO, load_state
    from asroot.grading.autograde import sweep
    from grader.collect import collect
    from grader.course import Course
    from grader.report import build, write
    from asroot.grading.runner import Context, grade_all
    from asroot.grading.sandbox import CONTROL

    t0 = time.monotonic()
    accounts = [pw.pw_name for pw in gradeaccounts.ensure_pool(JOBS)]
    sweep(accounts)
    binaries = gradeaccounts.engine_binaries()
    course = Course(COURSE)
    subs, problems = collect(SUBMISSIONS)
    course.add_students({s.student for s in subs})
    course.make_templates({s.lab for s in subs})
    out("grade_prepare_s", f"{time.monotonic() - t0:.1f}")
    hide = tuple(str(p) for p in (REPO / "labs" / "source", REPO / "labs" / "src", REPO / "tests", REPO / ".git",
                                  REPO / ".lab", course.root, SUBMISSIONS, Path("/root"), CONTROL,
                                  Path("/var/lib/dockerlab")))
    ctx = Context(course, load_state().mirror, binaries, cell_timeout=300, submission_timeout=1500, hide=hide,
                  lang="en", engine_timeout=900, helper_timeout=300, stagger=True)
    seen: dict[str, dict[str, str]] = {}
    stop = threading.Event()
    t = time.monotonic()
    watcher = threading.Thread(target=watch, args=(stop, seen), daemon=True)
    watcher.start()
    beat = threading.Thread(target=heartbeat, args=(stop, t), daemon=True)
    beat.start()
    try:
        outcomes = grade_all(ctx, subs, accounts, jobs=JOBS)
    finally:
        stop.set()
        watcher.join(timeout=30)
        beat.join(timeout=30)
    out("grade_s", f"{time.monotonic() - t:.1f}")
    write(build(course, outcomes, problems, ctx.cell_timeout), OUT)
    out("grade_sandboxes", ",".join(sorted(seen)) or "none")
    for acct, info in sorted(seen.items()):
        for k, v in sorted(info.items()):
            out(f"sandbox_{acct}_{k}", v)
    for row in json.loads((OUT / "report.json").read_text()):
        who = f"{row['student']}_{row['lab']}"
        out(f"score_{who}", " ".join(f"{task['score']:g}" for task in row["tasks"]))
        out(f"reasons_{who}", " | ".join(task["reason"] for task in row["tasks"]) or "none")
        out(f"not_graded_{who}", row.get("not_graded"))
        out(f"problem_{who}", row.get("problem") or "none")
        out(f"limit_hits_{who}", json.dumps(row.get("limit_hits") or {}, sort_keys=True))
        out(f"peak_mb_{who}", f"{row.get('peak_memory_mb', 0):.0f}")
        out(f"seconds_{who}", f"{row.get('seconds', 0):.0f}")
    for o in outcomes:
        detail = {k: o.detail.get(k) for k in ("engine_ready_s", "autograde_s", "teardown_s", "gate_passed",
                                               "autograde_started")}
        started = o.detail.get("started")
        detail["ended"] = started + o.seconds if isinstance(started, float) else None
        out(f"timings_{o.student}_{o.lab}", json.dumps(detail))
        if o.not_graded or o.error:  # what the sandbox's engine and worker said
            work = course.workdir(o.student, o.lab)
            for f in ("grader-worker.log", "sandbox-engine-grade.log", "grader-relay.log", "grader-checkd.log"):
                lines = (work / f).read_text(errors="replace").splitlines()[-4:] if (work / f).exists() else []
                for ln in lines:
                    out(f"log_{o.student}_{f}", ln[:300])
    # Nothing of a sandbox is left: cgroups, mounts, the accounts' processes, root's helpers.
    out("grade_left_cgroups", ",".join(p.name for p in CGROUPS.glob("dockerlab-grade-*")) or "none")
    mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines() if "/dockerlab-grade" in ln]
    out("grade_left_mounts", ",".join(mounts) or "none")
    uids = [pwd.getpwnam(a).pw_uid for a in accounts]
    left = [pid for uid in uids for pid in gradeaccounts.account_pids(uid)]
    left += [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
             and ("dockerlab-grade-holder" in _cmdline(p.name) or "labs.grading." in _cmdline(p.name))]
    out("grade_left_procs", len(left))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the host must see why
        import traceback

        out("grade_exception", f"{type(e).__name__}: {e}")
        for ln in traceback.format_exc().splitlines()[-6:]:
            out("grade_traceback", ln)
        sys.exit(1)
