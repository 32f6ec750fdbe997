"""Write the sample submissions from the student versions (``./lab grade generate``) and the
solutions in ``labs/source``. Run it again after changing a lab:

    .venv/bin/python tests/labs_submissions/make_samples.py <course>/release

The expected scores live in ``tests/test_labs_grading.py``; this file only says what each
learner did. Each sample is the release notebook with the answer cells filled in, so the
locked cells carry the checksums nbgrader wrote (as a real submission does).
"""

from __future__ import annotations

import re
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


def cell(nb: nbformat.NotebookNode, gid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def save(nb: nbformat.NotebookNode, student: str, folder: str, name: str) -> None:
    d = HERE / student / folder
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, d / name)


def main(release: Path) -> None:
    sol = {lab: solutions(lab) for lab in ("lab1", "lab2", "lab3", "lab4")}

    # alice: every lab right.
    for lab, answers in sol.items():
        save(fill(release, lab, answers), "alice", lab, f"{lab}.ipynb")

    # bob: partly right. lab1: task 1 right, size in bytes instead of MB, task 3 not done.
    save(fill(release, "lab1", {
        "task1-answer": sol["lab1"]["task1-answer"],
        "task2-answer": sol["lab1"]["task2-answer"].replace("round(row.size / 1e6, 1)", "row.size"),
    }), "bob", "lab1", "lab1.ipynb")
    # lab3: tasks 1 and 2 right, serves on the wrong port.
    save(fill(release, "lab3", {**sol["lab3"], "task3-answer":
                                'web = lab.run("web:v2", name="lab3-web", ports={"80/tcp": 8083})'}),
         "bob", "lab3", "lab3.ipynb")

    # carol: wrong. lab2: commits on top of the old image (no dangling image, only an
    # intermediate one), lists correctly, then prunes every unused image (the decoy too).
    save(fill(release, "lab2", {
        "task1-answer": sol["lab2"]["task1-answer"].replace('lab.run("busybox:1.35"', 'lab.run("practice/app:latest"'),
        "task2-answer": sol["lab2"]["task2-answer"],
        "task3-answer": 'lab.client.images.prune(filters={"dangling": False})',
    }), "carol", "lab2", "lab2.ipynb")
    # lab4: pushes under the wrong namespace; the mirror task is right.
    save(fill(release, "lab4", {
        "task1-answer": sol["lab4"]["task1-answer"].replace("REPO", "OTHER").replace(
            'lab.client', 'OTHER = REPO.replace("/lab4/", "/other/")\nlab.client', 1),
        "task2-answer": sol["lab4"]["task2-answer"].replace("REPO", "OTHER"),
        "task3-answer": sol["lab4"]["task3-answer"],
    }), "carol", "lab4", "lab4.ipynb")

    # dave: tampers. Task 1 wrong and its test cell deleted; task 2 wrong and its locked test
    # cell rewritten to print a tick; task 3 wrong, self_check rebound to always pass, and a
    # hard-coded "✔" output stored in the test cell.
    nb = fill(release, "lab1", {
        "task1-answer": 'PINNED = "busybox:1.35"',
        "task2-answer": 'lab.pull("nginx:1.22", progress=False)\nNGINX_LAYERS, NGINX_SIZE_MB = 99, 1.0',
        "task3-answer": ('lab.pull("redis:7.0", progress=False)\n'
                         'from labs.grading import Verdict\n'
                         'self_check = lambda *args: Verdict(True, "找到了共享层")\n'
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
        "task3-answer": ('for image in lab.client.images.list(all=True):\n'
                         '    lab.client.images.remove(image.id, force=True)'),
    }), "eve", "lab2", "lab2.ipynb")

    # frank: a notebook that is not JSON, and a lab folder without the expected notebook.
    good = (HERE / "alice" / "lab1" / "lab1.ipynb").read_text()
    (HERE / "frank" / "lab1").mkdir(parents=True, exist_ok=True)
    (HERE / "frank" / "lab1" / "lab1.ipynb").write_text(good[: len(good) // 2])
    save(fill(release, "lab2", sol["lab2"]), "frank", "lab2", "实验2-副本.ipynb")

    # grace: right answers in a folder with the wrong name.
    save(fill(release, "lab3", sol["lab3"]), "grace", "lab-3", "lab3.ipynb")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
