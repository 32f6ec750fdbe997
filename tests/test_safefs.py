"""labcore.safefs, without root: links at each step are not followed, a FIFO does not hang, a device, a
socket and an oversized file are refused, O_EXCL creation refuses a planted file, bounded readers."""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from labcore import safefs


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.txt").write_bytes(b"mine")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "f.txt").write_bytes(b"SECRET")
    (tmp_path / "secret" / "b").mkdir()
    (tmp_path / "secret" / "b" / "f.txt").write_bytes(b"SECRET")
    return top


def test_reads_a_regular_file_below_the_top(tree: Path) -> None:
    assert safefs.read_under(tree, "a", "b", "f.txt") == b"mine"


@pytest.mark.parametrize("step", ["top", "a", "b", "file"])
def test_a_link_at_any_step_is_not_followed(tree: Path, step: str) -> None:
    secret = tree.parent / "secret"
    if step == "top":
        link = tree.parent / "linked-top"
        link.symlink_to(tree)
        assert safefs.read_under(link, "a", "b", "f.txt") is None
        return
    if step == "a":
        os.rename(tree / "a", tree / "a-moved")
        (tree / "a").symlink_to(secret.parent / "secret-parent-a")
        (secret.parent / "secret-parent-a").symlink_to(secret)  # a chain of links, too
        (secret / "b").mkdir(exist_ok=True)
    elif step == "b":
        os.rename(tree / "a" / "b", tree / "a" / "b-moved")
        (tree / "a" / "b").symlink_to(secret / "b")
    else:
        (tree / "a" / "b" / "f.txt").unlink()
        (tree / "a" / "b" / "f.txt").symlink_to(secret / "f.txt")
    assert safefs.read_under(tree, "a", "b", "f.txt") is None
    with pytest.raises(OSError):
        safefs.read_under(tree, "a", "b", "f.txt", strict=True)
    # the control: the same read through the plain path would have read the secret
    assert (tree / "a" / "b" / "f.txt").read_bytes() == b"SECRET"


def test_a_fifo_is_refused_at_once_not_waited_on(tree: Path) -> None:
    fifo = tree / "a" / "b" / "pipe.ipynb"
    os.mkfifo(fifo)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(safefs.read_under(tree, "a", "b", "pipe.ipynb")), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO blocked"
    assert result == [None]
    with pytest.raises(safefs.Refused, match="FIFO"):
        safefs.read_under(tree, "a", "b", "pipe.ipynb", strict=True)


def test_a_device_and_a_socket_are_refused(tree: Path) -> None:
    # /dev/null is a character device; a read through its path would succeed with b""
    assert safefs.read_under(Path("/dev"), "null") is None
    with pytest.raises(safefs.Refused, match="device"):
        safefs.read_under(Path("/dev"), "null", strict=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tree / "s"))
    try:
        with pytest.raises(OSError):  # a unix socket cannot even be opened: refused all the same
            safefs.read_under(tree, "s", strict=True)
        assert safefs.read_under(tree, "s") is None
    finally:
        sock.close()


def test_oversized_is_refused_and_the_cap_is_exact(tree: Path) -> None:
    (tree / "big").write_bytes(b"x" * 1001)
    assert safefs.read_under(tree, "big", limit=1000) is None
    with pytest.raises(safefs.Refused, match="larger"):
        safefs.read_under(tree, "big", limit=1000, strict=True)
    assert safefs.read_under(tree, "big", limit=1001) == b"x" * 1001


def test_names_with_a_slash_or_dots_are_refused(tree: Path) -> None:
    for bad in ("..", ".", "a/b", ""):
        with pytest.raises(safefs.Refused):
            safefs.open_under(tree, (bad,), directory=True)


def test_entries_report_links_and_fifos_as_what_they_are(tree: Path) -> None:
    (tree / "link").symlink_to(tree.parent / "secret")
    os.mkfifo(tree / "fifo")
    kinds = {n: safefs.kind_of(m) for n, m in safefs.entries_under(tree)}
    assert kinds == {"a": "a directory", "link": "a symbolic link", "fifo": "a FIFO (named pipe)"}
    assert safefs.names_under(tree, "link") == []  # a linked directory is not listed either
    assert safefs.names_under(tree, "a", "b") == ["f.txt"]


def test_write_under_makes_new_owner_only_files_and_never_writes_through_a_link(tree: Path) -> None:
    old = os.umask(0)
    try:
        victim = tree.parent / "secret" / "f.txt"
        (tree / "out").mkdir()
        (tree / "out" / "x.ipynb").symlink_to(victim)  # planted
        safefs.write_under(tree, ["out"], "x.ipynb", b"new")
        assert victim.read_bytes() == b"SECRET"
        st = os.lstat(tree / "out" / "x.ipynb")
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        safefs.write_under(tree, ["made", "here"], "y", b"1")
        assert stat.S_IMODE(os.stat(tree / "made").st_mode) == 0o700
        with pytest.raises(FileExistsError):  # O_EXCL: an existing file is refused, not overwritten
            safefs.write_under(tree, ["out"], "x.ipynb", b"again", replace=False)
        assert (tree / "out" / "x.ipynb").read_bytes() == b"new"
        (tree / "lnk").symlink_to(tree.parent / "secret")
        with pytest.raises(OSError):  # a directory step that is a link is refused
            safefs.write_under(tree, ["lnk"], "f.txt", b"overwritten")
        assert victim.read_bytes() == b"SECRET"
    finally:
        os.umask(old)


def test_write_private_replaces_a_planted_link_and_is_owner_only(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "rec").symlink_to(victim)
    old = os.umask(0)
    try:
        safefs.write_private(tmp_path / "rec", b"data")
    finally:
        os.umask(old)
    assert victim.read_bytes() == b"keep"
    st = os.lstat(tmp_path / "rec")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert safefs.read_private(tmp_path / "rec") == b"data"


def test_private_files_refuse_links_and_fifos(tmp_path: Path) -> None:
    (tmp_path / "victim").write_bytes(b"keep")
    (tmp_path / "log").symlink_to(tmp_path / "victim")
    with pytest.raises(OSError):
        safefs.open_private(tmp_path / "log", "ab")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):  # no reader: refused at once (ENXIO), never blocks
        safefs.open_private(tmp_path / "fifo", "ab")
    with pytest.raises(safefs.Refused):
        safefs.open_private(tmp_path / "fifo", "rb")
    assert (tmp_path / "victim").read_bytes() == b"keep"


def test_append_private_stops_at_its_cap(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    assert safefs.append_private(rec, b"x" * 60, cap=100)
    assert not safefs.append_private(rec, b"y" * 60, cap=100)
    assert rec.read_bytes() == b"x" * 60


def test_copy_file_cuts_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"z" * 5000)
    assert safefs.copy_file(tmp_path / "log", tmp_path / "copy", limit=1000)
    data = (tmp_path / "copy").read_bytes()
    assert data.startswith(b"z" * 1000) and b"cut at 1000 bytes" in data and len(data) < 1100
    (tmp_path / "ln").symlink_to(tmp_path / "log")
    assert not safefs.copy_file(tmp_path / "ln", tmp_path / "copy2")


def test_copy_regular_tree_copies_files_only(tree: Path, tmp_path: Path) -> None:
    (tree / "a" / "ln").symlink_to(tree.parent / "secret" / "f.txt")
    os.mkfifo(tree / "a" / "fifo")
    safefs.copy_regular_tree(tree, Path("a"), tmp_path / "dst")
    assert sorted(str(p.relative_to(tmp_path / "dst")) for p in (tmp_path / "dst").rglob("*")) == ["b", "b/f.txt"]
    with pytest.raises(OSError):
        safefs.copy_regular_tree(tree, Path("a"), tmp_path / "dst2", limit=2)


def test_kernel_files_only_under_sys_and_proc(tmp_path: Path) -> None:
    assert safefs.read_kernel("/proc/self/stat").split()[0] == str(os.getpid())
    with pytest.raises(safefs.Refused):
        safefs.write_kernel(tmp_path / "x", 1)


@pytest.mark.parametrize("path", ["/proc/self/root/etc/passwd", "/proc/1/cwd", "/proc/self/exe", "/proc/self/fd/0",
                                  "/proc/thread-self/root", "/proc/self/task/1/cwd/x", "/proc/self/map_files/x",
                                  "/proc/../etc/passwd", "/proc", "/sysx/y", "/run/netnsx", "/etc/passwd"])
def test_kernel_files_refuse_magic_links_and_other_places(path: str) -> None:
    """/proc/<pid>/root, cwd, exe, fd/* lead anywhere (another process's root, its open files): refused
    for reading and writing, as is a path that only starts with a kernel directory's name."""
    for call in (safefs.read_kernel, lambda p: safefs.write_kernel(p, "1")):
        with pytest.raises(safefs.Refused):
            call(path)


def test_namespaces_are_opened_only_for_setns() -> None:
    fd = safefs.open_kernel("/proc/self/ns/net")
    os.close(fd)
    for path in ("/proc/self/ns/net", "/run/netns/x"):
        with pytest.raises(safefs.Refused):
            safefs.read_kernel(path)
        with pytest.raises(safefs.Refused):
            safefs.write_kernel(path, "1")
    with pytest.raises(safefs.Refused):
        safefs.open_kernel("/proc/self/root")


def test_write_kernel_never_creates_a_file() -> None:
    """A knob that does not exist is not made (the "w" of open() would create it where it could)."""
    with pytest.raises(FileNotFoundError):
        safefs.write_kernel("/proc/self/no-such-knob", "1")
    assert safefs.read_kernel("/proc/mounts", 1 << 20).strip()  # an ordinary link of /proc still reads


def test_remove_tree_unlinks_a_link_without_following_it(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "f").write_text("1")
    (tmp_path / "gone").symlink_to(tmp_path / "keep")
    safefs.remove_tree(tmp_path / "gone")
    assert (tmp_path / "keep" / "f").exists() and not (tmp_path / "gone").exists()
    d = tmp_path / "d"
    d.mkdir()
    (d / "in").symlink_to(tmp_path / "keep")
    safefs.remove_tree(d)
    assert not d.exists() and (tmp_path / "keep" / "f").exists()


def test_bounded_readers_keep_at_most_their_cap() -> None:
    kept, dropped = safefs.read_bounded(io.BytesIO(b"a" * 300_000), 1000)
    assert kept == b"a" * 1000 and dropped
    kept, dropped = safefs.read_bounded(io.BytesIO(b"short"), 1000)
    assert kept == b"short" and not dropped
    flood = b"READY 1 2\n" + b"x" * 1_000_000 + b"\n" + b"l\n" * 50 + b"DONE 0\n"
    r = safefs.LineReader(io.BytesIO(flood), max_line=100, max_lines=20)
    lines = list(r)
    assert lines[0] == b"READY 1 2\n" and len(lines[1]) == 100 and lines[2] == b"l\n"
    assert len(lines) == 20 and r.dropped == 33
    assert max(len(x) for x in lines) <= 100


# extract_tar_stream: a tar stream another account made, unpacked as the caller's own files

def _tar(*entries: tuple[str, str, bytes | str, int]) -> io.BytesIO:
    """A tar stream of (name, kind, data or link target, mode) entries, kind one of dir, file, sym, hard, chr,
    fifo, in order."""
    import tarfile

    out = io.BytesIO()
    kinds = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
             "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kinds[kind], mode
            if kind in ("sym", "hard"):
                info.linkname = str(data)
            if kind == "file":
                raw = data if isinstance(data, bytes) else data.encode()
                info.size = len(raw)
                tf.addfile(info, io.BytesIO(raw))
            else:
                tf.addfile(info)
    out.seek(0)
    return out


def test_a_tar_stream_is_unpacked_as_the_callers_own_files_with_links_made_last(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    safefs.extract_tar_stream(_tar(("./", "dir", "", 0o700), ("./usr", "dir", "", 0o700),
                                   ("./usr/dockerd", "file", "#!/bin/sh\n", 0o4750),
                                   ("./usr/notes", "file", "text", 0o600),
                                   ("./usr/same", "hard", "./usr/dockerd", 0o4750),
                                   ("./out", "sym", str(outside), 0o777)), dst, max_bytes=1 << 20)
    assert stat.S_IMODE((dst / "usr").stat().st_mode) == 0o755
    assert stat.S_IMODE((dst / "usr" / "dockerd").stat().st_mode) == 0o755  # no set-id bit, runnable by all
    assert stat.S_IMODE((dst / "usr" / "notes").stat().st_mode) == 0o644
    assert (dst / "usr" / "same").read_text() == "#!/bin/sh\n" and (dst / "usr" / "same").stat().st_nlink == 1
    assert os.readlink(dst / "out") == str(outside) and list(outside.iterdir()) == []


@pytest.mark.parametrize("entries, why", [
    ((("./out", "sym", "/OUTSIDE", 0o777), ("./out/planted", "file", "x", 0o644)), "below a link"),
    ((("./x", "file", "a", 0o644), ("./x", "file", "b", 0o644)), "given twice"),
    ((("../planted", "file", "x", 0o644),), "not a name inside"),
    ((("/planted", "file", "x", 0o644),), "not a name inside"),
    ((("./disk", "chr", "", 0o600),), "a device"),
    ((("./pipe", "fifo", "", 0o600),), "FIFO"),
    ((("./h", "hard", "/etc/shadow", 0o644),), "hard link"),
    ((("./big", "file", b"x" * 5000, 0o644),), "more than 8192 bytes"),
    (tuple((f"./{i}", "dir", "", 0o755) for i in range(3)), "more than 2 entries"),
    ((("./" + "/".join("d" * 5), "dir", "", 0o755),), "not a name inside"),
])
def test_a_tar_stream_that_would_reach_out_or_grow_past_its_caps_is_refused(tmp_path: Path, entries, why) -> None:  # type: ignore[no-untyped-def]
    dst = tmp_path / "dst"
    dst.mkdir()
    with pytest.raises(safefs.Refused, match=why):
        safefs.extract_tar_stream(_tar(*entries), dst, max_bytes=8192, max_members=2, max_depth=4)
    assert not (tmp_path / "planted").exists() and not Path("/OUTSIDE").exists()
    assert not [p for p in dst.rglob("*") if p.is_symlink()]  # links come last: none made on the way out


def test_a_tar_stream_that_ends_early_is_refused(tmp_path: Path) -> None:
    whole = _tar(("./a", "file", b"x" * 3000, 0o644)).getvalue()
    with pytest.raises(safefs.Refused, match="not a whole, plain tar stream"):
        safefs.extract_tar_stream(io.BytesIO(whole[:1500]), tmp_path, max_bytes=1 << 20)


def _pax(keys: dict[str, str], then: tuple[str, bytes]) -> bytes:
    """A pax extended header with ``keys`` for the member ``then`` (name, data), as raw bytes."""
    import tarfile

    info = tarfile.TarInfo(then[0])
    info.size, info.pax_headers = len(then[1]), keys
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(then[1]))
    return out.getvalue()


@pytest.mark.parametrize("keys, why", [
    ({"GNU.sparse.realsize": "-1000000000000000"}, "sparse|more than"),  # would turn the byte count negative
    ({"GNU.sparse.size": "x"}, "sparse|plain tar stream"),
    ({"path": "a\0b"}, "NUL|plain tar stream"),
    ({"comment": "x" * (200 << 10)}, "pax header of"),  # tarfile would hold it whole, twice
])
def test_a_tar_stream_with_headers_tarfile_would_trust_is_refused_in_one_sentence(tmp_path: Path, keys,  # type: ignore[no-untyped-def]
                                                                                   why) -> None:
    raw = _pax(keys, ("f", b"data")) + _tar(("./big", "file", b"x" * 3000, 0o644)).getvalue()
    with pytest.raises(safefs.Refused, match=why):
        safefs.extract_tar_stream(io.BytesIO(raw), tmp_path, max_bytes=2048)


def test_a_chain_of_headers_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    import tarfile

    one = tarfile.TarInfo("x" * 200)
    chain = b"".join(one.tobuf(format=tarfile.GNU_FORMAT)[:-512] for _ in range(2000))  # long-name headers only
    with pytest.raises(safefs.Refused, match="plain tar stream"):
        safefs.extract_tar_stream(io.BytesIO(chain + b"\0" * 1024), tmp_path, max_bytes=1 << 20)


def test_a_timed_reader_neither_waits_past_its_deadline_nor_reads_past_its_cap() -> None:
    import subprocess
    import sys
    import time

    # the writer hands its end of the pipe to a child in another session, then both stall: no EOF ever comes
    writer = subprocess.Popen([sys.executable, "-c", "import os,sys,time\nsys.stdout.write('partial');"
                               "sys.stdout.flush()\nif os.fork()==0:\n os.setsid(); time.sleep(5)\ntime.sleep(30)"],
                              stdout=subprocess.PIPE)
    assert writer.stdout is not None
    try:
        t0 = time.monotonic()
        with pytest.raises(safefs.Refused, match="in time"):
            safefs.read_bounded(safefs.TimedReader(writer.stdout.fileno(), 1 << 20, time.monotonic() + 1.5), 1 << 20)
        assert time.monotonic() - t0 < 10
    finally:
        writer.kill()
        writer.wait()
    r, w = os.pipe()
    os.write(w, b"x" * 5000)
    os.close(w)
    with pytest.raises(safefs.Refused, match="cap"):
        safefs.read_bounded(safefs.TimedReader(r, 4096, time.monotonic() + 5), 1 << 20)
    os.close(r)
