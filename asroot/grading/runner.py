"""Autograde submissions, each in its own :class:`Sandbox` on an account of the grading pool,
``jobs`` at a time. This module is the grader's (root's) side: it makes the sandbox, starts root's
helpers (the mirror's relay, the check service, lab 4's registry as ``nobody``), starts the worker
inside as the account, and afterwards takes the grades from the check service's record."""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labengine.enginepkgs import EngineBinaries
from labengine.registry import Registry
from labcore.state import REPO, LabPaths, State, save_state

from grader.collect import Submission
from grader.report import Outcome
from grader.course import Course, printable
from labcore import proc, safefs
from labs.grading.messages import t
from asroot.grading.checkd import MAX_RECORD
from asroot.grading.sandbox import NOBODY, Limits, Sandbox

__all__ = ["Context", "Outcome", "engine_args", "grade_all", "grade_one"]

SANDBOX_REGISTRY_PORTS = (5102, 5103)  # lab 4's registry, on the sandbox's own loopback
MAX_WORKER_LINE = 1024  # bytes of one line of the worker's stdout that root keeps
MAX_WORKER_LINES = 1000  # lines of it (the worker says READY and DONE; the rest is a flood, dropped)


def sandbox_registry(mirror: str) -> str:
    """127.0.0.1:5102, or 5103 should the lab's mirror use 5102 (both live on the sandbox's loopback)."""
    mport = int(mirror.rpartition(":")[2])
    return f"127.0.0.1:{next(p for p in SANDBOX_REGISTRY_PORTS if p != mport)}"


def engine_args(box: Sandbox) -> list[str]:
    """dockerd flags of a submission's engine. A rootless dockerd picks the systemd cgroup driver on a
    cgroup v2 host booted with systemd, which needs the account's user manager (a grading account has
    none) and rejects a ``--cgroup-parent`` that is not a slice: asking for cgroupfs makes it use the
    rootless "none" driver on both hierarchies, so every container stays in the sandbox's cgroup."""
    return [f"--cgroup-parent={box.cgroup.container_parent()}", "--exec-opt", "native.cgroupdriver=cgroupfs"]


def sandbox_course(course: Course, lab: str, student: str, notebook: Path, dest: Path, uid: int, gid: int,
                   sandbox_root: Path) -> None:
    """The sandbox's course in ``dest``: config, this lab's gradebook, the submitted notebook."""
    t = course.template(lab)
    config = (f"c = get_config()  # noqa: F821\n"
              f"load_subconfig({str(REPO / 'labs' / 'nbgrader_config.py')!r})  # noqa: F821\n"
              f"c.CourseDirectory.root = {str(sandbox_root)!r}\n")
    safefs.write_private(dest / "nbgrader_config.py", config, mode=0o644)
    if not safefs.copy_file(t / "gradebook.db", dest / "gradebook.db", limit=256 << 20, mode=0o644):
        raise RuntimeError(f"the course's gradebook template {t / 'gradebook.db'} is not a regular file")
    sub = dest / "submitted" / student / lab
    sub.mkdir(parents=True)
    safefs.copy_file(notebook, sub / f"{lab}.ipynb", limit=safefs.MAX_FILE, mode=0o644)
    for p in [dest, *dest.rglob("*")]:
        os.chown(p, uid, gid)


@dataclass
class Context:
    course: Course
    mirror: str  # host:port of the lab's mirror on the host's loopback
    binaries: EngineBinaries
    cell_timeout: int = 60
    submission_timeout: int = 600
    limits: Limits = field(default_factory=Limits)
    hide: tuple[str, ...] = ()
    lang: str = "zh"
    # seconds for a submission's engine and root's helpers to come up (an emulated CPU needs minutes)
    engine_timeout: float = 60.0
    helper_timeout: float = 15.0
    # True: one sandbox at a time is set up and starts its engine; the next begins once that engine
    # answers (READY), so only the gradings overlap. Engines starting together on a starved or emulated
    # CPU miss containerd's fixed 15 s start window.
    stagger: bool = False
    hidden_tests: bool = False  # feedback shows the hidden tests (the instructor asked: --feedback-hidden-tests)
    start_gate: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def _wait_file(path: Path, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start: {_tail(log)}")


def _head(log: Path, limit: int = 64 << 10) -> str:
    try:
        return safefs.read_private(log, limit).decode(errors="replace")
    except OSError:
        return ""


def _tail(log: Path, n: int = 300) -> str:
    """The last ``n`` characters of a log of root's (only its last 64 KiB are read), printable."""
    try:
        with safefs.open_private(log, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - (64 << 10)))
            text = f.read(64 << 10).decode(errors="replace")
    except OSError:
        return ""
    return printable(text.strip()[-n:], n)


def _wait_text(log: Path, text: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in _head(log):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start: {_tail(log)}")


def _helpers(box: Sandbox, ctx: Context) -> str:
    """Root's relay to the mirror, lab 4's registry (as nobody), the check service. Returns its socket."""
    holder = box.holder_pid()
    port = int(ctx.mirror.rpartition(":")[2])
    box.helper("relay", [sys.executable, "-m", "asroot.grading.relay", str(holder), str(port)])
    registry = sandbox_registry(ctx.mirror)
    reg = Registry("grade", int(registry.rpartition(":")[2]), box.home / "registry" / "data",
                   box.control, box.control)
    reg.storage.mkdir(exist_ok=True)
    os.chown(reg.storage, NOBODY, NOBODY)
    safefs.write_private(reg.config, reg.config_text(), mode=0o644)
    box.helper("registry", box.enter_root_net(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                               "--inh-caps=-all", "--no-new-privs", "--", "/usr/bin/docker-registry",
                                               "serve", str(reg.config)]))
    state_home = box.control / "home"
    save_state(State(engine="grade", docker_host=f"unix://{box.user / 'run' / 'grade.sock'}", upstream=registry,
                     registry=registry, mirror=f"127.0.0.1:{port}"), LabPaths(home=state_home, run=box.control))
    sock = box.home / "ctl" / "checkd.sock"
    box.helper("checkd", box.enter_root_net([sys.executable, "-m", "asroot.grading.checkd", str(sock),
                                             str(box.control / "verdicts.jsonl"), str(box.pw.pw_uid)]),
               env={"LAB_HOME": str(state_home), "DOCKERLAB_LANG": ctx.lang})
    wait = ctx.helper_timeout
    _wait_text(box.logs / "relay.log", "relaying", wait, "the mirror's relay")
    _wait_file(sock, wait, "the check service", box.logs / "checkd.log")
    _wait_text(box.logs / "registry.log", "listening on", wait, "lab 4's registry")
    return str(sock)


def _verdicts(record: Path) -> dict[str, dict[str, object]]:
    """check name -> its last verdict, from the check service's record (root's file, capped by checkd)."""
    last: dict[str, dict[str, object]] = {}
    try:
        lines = safefs.read_private(record, MAX_RECORD + (64 << 10)).decode(errors="replace").splitlines()
    except OSError:
        return last
    for line in lines:
        try:
            v = json.loads(line)
            last[str(v["check"])] = v
        except (ValueError, KeyError, TypeError):
            pass
    return last


MAX_LOGS = 8  # of the sandbox's own logs copied into the course directory
MAX_LOG = 2 << 20  # bytes of each log copied (the rest is cut and the copy says so)


def _copy_logs(box: Sandbox, work: Path) -> None:
    """The sandbox's logs (the account's files: no link followed) and root's helpers' logs into ``work``,
    at most :data:`MAX_LOGS` of the account's, each cut at :data:`MAX_LOG` bytes."""
    names = [n for n in safefs.names_under(box.user, "logs") if n.endswith(".log")][:MAX_LOGS]
    for name in names:
        data = _capped_under(box.user, name)
        if data is not None:
            safefs.write_private(work / f"sandbox-{printable(name, 60).replace('/', '_')}", data)
    for name in ("relay", "checkd", "registry", "worker"):
        safefs.copy_file(box.logs / f"{name}.log", work / f"grader-{name}.log", limit=MAX_LOG)
    safefs.copy_file(box.control / "holder.log", work / "grader-holder.log", limit=MAX_LOG)


def _capped_under(top: Path, name: str) -> bytes | None:
    """A log of the account's, its first :data:`MAX_LOG` bytes (a longer one is cut, and says so)."""
    try:
        fd = safefs.open_under(top, ("logs", name), directory=False)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        data = f.read(MAX_LOG + 1)
    return data if len(data) <= MAX_LOG else data[:MAX_LOG] + f"\n[... cut at {MAX_LOG} bytes]\n".encode()


def _engine(pid: int, uid: int) -> tuple[int, int]:
    """(pid, start time) of the sandbox's dockerd that the worker named, or ValueError why it is not one."""
    try:
        _, start, name, owner = proc.identity(pid)
    except OSError:
        raise ValueError(f"the engine's process (pid {pid}) is gone") from None
    if name != "dockerd" or owner != uid:
        raise ValueError(f"pid {pid} is not the sandbox's dockerd ({name!r}, uid {owner})")
    return pid, start


class _NotGraded(Exception):
    """This submission is not graded, for the reason given (already a sentence for the instructor)."""


_GRADEBOOK = threading.Lock()


def grade_one(ctx: Context, sub: Submission, account: str) -> Outcome:
    t0 = time.monotonic()
    course = ctx.course
    out = Outcome(sub.student, sub.lab)
    dest = course.submitted(sub.student, sub.lab)
    safefs.remove_tree(dest)
    dest.mkdir(parents=True)
    safefs.remove_tree(course.autograded(sub.student, sub.lab).parent)
    work = course.workdir(sub.student, sub.lab)
    safefs.remove_tree(work)
    work.mkdir(parents=True)
    try:  # read again, no link followed: it may have changed since it was collected
        safefs.write_private(dest / f"{sub.lab}.ipynb", sub.read())
    except OSError as e:
        out.not_graded = printable(f"{sub.lab}.ipynb: {e}", 200)
        with _GRADEBOOK:
            course.record_grades(sub.student, sub.lab, {}, None,
                                 not_graded=t("grade.not_graded", reason=out.not_graded))
        return out
    box = Sandbox(account, ctx.limits, hide=ctx.hide)
    result: dict[str, object] = {"account": account, "started": time.time()}
    autograded = None
    procs: list[subprocess.Popen[bytes]] = []
    deadline = time.monotonic() + ctx.submission_timeout
    gate = ctx.start_gate if ctx.stagger else None
    held = False  # this submission holds the gate
    try:
        if gate is not None:  # waiting for the other sandbox's engine counts against this submission's time
            held = gate.acquire(timeout=max(0.0, deadline - time.monotonic()))
            if not held:
                raise _NotGraded(t("grade.timeout", s=ctx.submission_timeout))
            result["gate_passed"] = time.time()
        box.create(timeout=max(1.0, deadline - time.monotonic()))
        sock = _helpers(box, ctx)
        pw = box.pw
        sandbox_course(course, sub.lab, sub.student, dest / f"{sub.lab}.ipynb", box.user / "course", pw.pw_uid,
                              pw.pw_gid, box.user / "course")
        job = {"binaries": asdict(ctx.binaries), "mirror": f"127.0.0.1:{ctx.mirror.rpartition(':')[2]}",
               "registry": sandbox_registry(ctx.mirror), "checkd": sock, "assignment": sub.lab, "student": sub.student,
               "cell_timeout": ctx.cell_timeout, "lang": ctx.lang,
               "engine_args": engine_args(box), "engine_timeout": ctx.engine_timeout}
        safefs.write_private(box.home / "ctl" / "job.json", json.dumps(job), mode=0o644)
        env = {"HOME": str(box.user), "USER": account, "LOGNAME": account, "PYTHONPATH": str(REPO),
               "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "XDG_RUNTIME_DIR": str(box.user / "run"),
               "LANG": "C.UTF-8"}
        argv = box.enter(["env", "-C", str(box.user), sys.executable, "-m", "grader.worker",
                          str(box.home / "ctl" / "job.json")])
        with safefs.open_private(box.logs / "worker.log", "wb") as log:
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                 cwd="/", start_new_session=True)
            procs.append(p)
            lines: queue.Queue[str] = queue.Queue()

            def pump() -> None:  # at most MAX_WORKER_LINES lines of MAX_WORKER_LINE bytes: a flood is dropped
                for raw in safefs.LineReader(p.stdout, MAX_WORKER_LINE, MAX_WORKER_LINES):  # type: ignore[arg-type]
                    lines.put(raw.decode(errors="replace").strip())
                lines.put("")

            threading.Thread(target=pump, daemon=True).start()
            ready = False
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    line = None
                if line is None or time.monotonic() > deadline:
                    out.error = t("grade.timeout", s=ctx.submission_timeout)
                    if not ready:
                        out.not_graded = t("grade.timeout", s=ctx.submission_timeout)
                    break
                if not ready and line.startswith("READY "):
                    ready = True
                    pid, secs = line.split()[1:3]
                    try:  # the account's dockerd, named by its pid and start time (a pid may be taken again)
                        engine = _engine(int(pid), box.pw.pw_uid)
                    except ValueError as e:
                        out.not_graded = printable(str(e), 300)
                        break
                    safefs.write_private(box.control / "dockerd.expected", f"{engine[0]} {engine[1]}")
                    result["engine_ready_s"] = float(secs)
                    result["autograde_started"] = time.time()
                    if gate is not None and held:
                        gate.release()  # the next sandbox may start its engine
                        held = False
                elif not ready:  # before READY only the grader's code ran: its word is trusted
                    if line.startswith("FAILED ") or line == "":
                        tail = _tail(box.logs / "worker.log").splitlines()[-1:]
                        out.not_graded = printable(line[7:] or (tail[0] if tail else "the sandbox's worker exited"),
                                                   300)
                        break
                elif line.startswith("DONE ") or line == "":
                    rc = line[5:]
                    if rc != "0":
                        out.error = t("grade.failed", err=f"nbgrader exit {rc or '?'}",
                                      log=work / "sandbox-nbgrader.log")
                    break
            if p.poll() is None:
                p.kill()
        started = result.get("autograde_started")
        result["autograde_s"] = round(time.time() - started, 2) if isinstance(started, float) else 0.0
    except _NotGraded as e:
        out.not_graded = str(e)
    except Exception as e:  # the grader's own failure: this submission is not graded, the batch goes on
        out.not_graded = f"{type(e).__name__}: {e}"[:400]
    finally:
        if gate is not None and held:
            gate.release()
        t_end = time.monotonic()
        hits = box.cgroup.limit_hits()
        box.stop()
        for child in procs:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        out.peak_memory = box.cgroup.peak_memory()
        result["limit_hits"] = hits
        # the account's files only now that nothing of it runs, and with no link followed
        autograded = safefs.read_under(box.user, "course", "autograded", sub.student, sub.lab, f"{sub.lab}.ipynb")
        try:
            _copy_logs(box, work)
        except OSError:
            pass
        verdicts = _verdicts(box.control / "verdicts.jsonl")
        flooded = _head(box.control / "checkd.full", 400).strip()
        if flooded and not out.not_graded:
            out.not_graded = printable(flooded, 300)
        box.sweep()
        result["teardown_s"] = round(time.monotonic() - t_end, 2)
    with _GRADEBOOK:  # one writer at a time: SQLite would refuse a second one after 5 s ("database is locked")
        out.tasks = course.record_grades(sub.student, sub.lab, verdicts, autograded,
                                         not_graded=t("grade.not_graded", reason=out.not_graded)
                                         if out.not_graded else "", hidden_tests=ctx.hidden_tests)
    out.detail = result
    safefs.write_private(work / "result.json", json.dumps({**result, "not_graded": out.not_graded, "error": out.error}))
    out.seconds = round(time.monotonic() - t0, 2)
    return out


def grade_all(ctx: Context, subs: list[Submission], accounts: list[str], jobs: int = 2) -> list[Outcome]:
    free: queue.Queue[str] = queue.Queue()
    for a in accounts[:max(1, jobs)]:
        free.put(a)

    def one(sub: Submission) -> Outcome:
        account = free.get()
        try:
            return grade_one(ctx, sub, account)
        finally:
            free.put(account)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, subs))
