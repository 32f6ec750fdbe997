"""The one safe-filesystem layer (stdlib only). Root's wing opens paths through here and nowhere else
(``tests/test_layout.py`` checks it), so that a link, a FIFO or a device another account planted is never
followed, never waited on, and never read whole.

Two kinds of places:

* **below a trusted top** (another account's files: a submission, a grading sandbox's HOME, a learner's
  course): :func:`open_under`, :func:`read_under`, :func:`names_under`, :func:`entries_under`,
  :func:`write_under`, :func:`copy_regular_tree`. No link is followed at ``top`` or at any step below it;
  only regular files are read (opened ``O_NONBLOCK``: a FIFO never blocks), up to a size cap; new files are
  made ``O_CREAT|O_EXCL|O_NOFOLLOW`` with owner-only modes.
* **root's own places** (root-only directories such as ``/run/dockerlab-grade``, root's course, the
  kernel's ``/sys`` and ``/proc`` files): :func:`read_private`, :func:`write_private`,
  :func:`append_private`, :func:`open_private`, :func:`read_kernel`, :func:`write_kernel`,
  :func:`remove_tree`, :func:`copy_file`. Still no link followed in the last step, still capped.
* **a tar stream another account made**, unpacked into a fresh directory of root's as root's own files:
  :func:`extract_tar_stream` (directories, regular files, links; counted and capped; links made last).

Pipes and sockets: :func:`read_bounded`, :class:`LineReader` and :class:`TimedReader` never hold more than
their cap (the last: nor wait past its deadline).
"""

from __future__ import annotations

import io
import os
import select
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from labcore.errors import LabFailure

__all__ = ["MAX_FILE", "LineReader", "Refused", "TimedReader", "append_private", "copy_file", "copy_regular_tree",
           "entries_under", "extract_tar_stream", "kind_of", "names_under", "open_dir", "open_kernel", "open_private",
           "open_under", "private_dir", "read_bounded", "read_kernel", "read_private", "read_under", "remove_tree",
           "untrusted_by_root", "write_kernel", "write_private", "write_under"]

MAX_FILE = 20 << 20  # the default cap of a file read whole (a notebook, a log)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Refused(OSError):
    """Not a regular file of the expected size, or a link: why, in a few words (``str(e)``)."""


def kind_of(mode: int) -> str:
    """What a file is, in a word: "a symbolic link", "a FIFO", "a device", "a socket", "a directory"."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a regular file" if stat.S_ISREG(mode) else "an unknown kind of file"


# -- below a trusted top -------------------------------------------------------------------------------

def open_dir(path: Path, what: str = "") -> int:
    """An fd of the directory ``path`` (``path`` itself not a link). ``what``: say so as a LabFailure."""
    try:
        return os.open(path, _DIR)
    except OSError:
        if not what:
            raise
        raise LabFailure(f"{path} is not a directory ({what}): remove it, then try again.") from None


def open_under(top: Path | int, rel: tuple[str, ...] | list[str], *, directory: bool) -> int:
    """An fd of ``top/rel...`` opened without following a link at ``top`` or at any step below it
    (``top`` may be an open directory fd: then it is used, not closed). A file is opened ``O_NONBLOCK``
    (a FIFO does not block) and is not checked here: :func:`read_under` does."""
    for part in rel:
        if part in ("", ".", "..") or "/" in part:
            raise Refused(f"not a plain name: {part!r}")
    fds = [os.dup(top) if isinstance(top, int) else os.open(top, _DIR)]
    try:
        for i, part in enumerate(rel):
            last = i == len(rel) - 1
            fds.append(os.open(part, _DIR if directory or not last else _FILE, dir_fd=fds[-1]))
        return fds.pop()
    finally:
        for fd in fds:
            os.close(fd)


def _read_fd(fd: int, limit: int) -> bytes:
    """The regular file open as ``fd`` (closed here), at most ``limit`` bytes, or :class:`Refused`."""
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused(kind_of(st.st_mode))
        if st.st_size > limit:
            raise Refused(f"larger than {limit >> 20 or limit} {'MiB' if limit >> 20 else 'bytes'}")
        os.set_blocking(f.fileno(), True)
        data = f.read(limit + 1)
        if len(data) > limit:  # grew while read
            raise Refused(f"larger than {limit} bytes")
        return data


def read_under(top: Path | int, *rel: str, limit: int = MAX_FILE, strict: bool = False) -> bytes | None:
    """The regular file ``top/rel...`` (another account's), no link followed below ``top``: its bytes, or
    None if it is missing, a link, not a regular file (a FIFO, a device, a socket) or larger than
    ``limit``. ``strict``: raise :class:`Refused` / OSError saying why instead of None."""
    try:
        return _read_fd(open_under(top, rel, directory=False), limit)
    except OSError as e:
        if strict:
            if getattr(e, "errno", None) == 40:  # ELOOP: O_NOFOLLOW met a link
                raise Refused("a symbolic link") from None
            raise
        return None


def names_under(top: Path | int, *rel: str) -> list[str]:
    """The names in the directory ``top/rel...`` (no link followed below ``top``); [] if there is none."""
    try:
        fd = open_under(top, rel, directory=True)
    except OSError:
        return []
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def entries_under(top: Path | int, *rel: str) -> list[tuple[str, int]]:
    """(name, ``st_mode`` by lstat) of each entry of the directory ``top/rel...``, sorted; a link is
    reported as a link, never followed. [] if there is no such directory."""
    try:
        fd = open_under(top, rel, directory=True)
    except OSError:
        return []
    try:
        out = []
        for name in sorted(os.listdir(fd)):
            try:
                out.append((name, os.lstat(name, dir_fd=fd).st_mode))
            except OSError:
                continue
        return out
    finally:
        os.close(fd)


def write_under(top: Path | int, dirs: list[str] | tuple[str, ...], name: str, data: bytes, *,
                mode: int = 0o600, dir_mode: int = 0o700, replace: bool = True) -> None:
    """``data`` as ``top/dirs.../name``: directories made ``dir_mode`` where missing, none followed if a
    link; the file new (``O_EXCL|O_NOFOLLOW``, ``mode``). ``replace``: an earlier file of that name is
    removed first (never written through); else an existing one is refused (FileExistsError)."""
    fds = [os.dup(top) if isinstance(top, int) else os.open(top, _DIR)]
    try:
        for d in dirs:
            try:
                os.mkdir(d, dir_mode, dir_fd=fds[-1])
            except FileExistsError:
                pass
            fds.append(os.open(d, _DIR, dir_fd=fds[-1]))
        if replace:
            try:
                os.unlink(name, dir_fd=fds[-1])
            except FileNotFoundError:
                pass
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                     dir_fd=fds[-1])
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
    finally:
        for fd in fds:
            os.close(fd)


def copy_regular_tree(top: Path, rel: Path, dst: Path, *, mode: int = 0o644, dir_mode: int = 0o755,
                      limit: int = 1 << 34) -> None:
    """``top/rel`` (another account's) as the new directory ``dst``: directories and regular files only,
    no link followed on the way or inside, nothing else copied (a link there would otherwise be served,
    or read, as what it points to); at most ``limit`` bytes in all."""
    fds = [os.open(top, _DIR)]
    left = limit
    try:
        for part in rel.parts[:-1]:
            fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
        dst.mkdir(mode=dir_mode)
        for path, _dirs, files, dfd in os.fwalk(rel.parts[-1], dir_fd=fds[-1], follow_symlinks=False):
            here = dst / os.path.relpath(path, rel.parts[-1])
            here.mkdir(mode=dir_mode, exist_ok=True)
            os.chmod(here, dir_mode)
            for name in files:
                try:
                    fd = os.open(name, _FILE, dir_fd=dfd)
                except OSError:  # a link (ELOOP) or gone
                    continue
                with os.fdopen(fd, "rb") as f:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    left -= st.st_size
                    if left < 0:
                        raise Refused(f"more than {limit >> 20} MiB")
                    os.set_blocking(fd, True)
                    out = os.open(here / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                    with os.fdopen(out, "wb") as o:
                        shutil.copyfileobj(f, o, 1 << 20)
                        os.fchmod(o.fileno(), mode)
    finally:
        for fd in fds:
            os.close(fd)


def untrusted_by_root(path: Path) -> str:
    """Empty if no account but root can change ``path`` or any directory above it (each one root's and
    not writable by group or others, a sticky one such as /tmp only above a root-owned one); else why."""
    real = Path(os.path.realpath(path))
    chain = [*reversed(real.parents), real]
    for i, p in enumerate(chain):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return ""  # root makes the rest
        except OSError as e:
            return f"{p} cannot be checked ({e.strerror})"
        if st.st_uid != 0:
            return f"{p} belongs to uid {st.st_uid}"
        last = i == len(chain) - 1
        if st.st_mode & 0o022 and (last or not st.st_mode & stat.S_ISVTX):
            return f"{p} is writable by other accounts"
    return ""


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this account can enter; refuses one owned by someone else (e.g.
    planted in /tmp by another account) or a symlink."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise LabFailure(f"{path} exists but is not a directory of this account: remove it, then try again.")
    os.chmod(path, 0o700)
    return path


# -- root's own places -------------------------------------------------------------------------------

def open_private(path: Path, how: str = "rb", mode: int = 0o600) -> BinaryIO:
    """A file of root's in a directory only root can change (e.g. a log of root's helpers), the last step
    not followed if a link; made ``mode`` if new. ``how``: "rb", "wb" (truncates), "ab"."""
    flags = {"rb": os.O_RDONLY, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[how]
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path} is {kind_of(st.st_mode)}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, how)  # type: ignore[return-value]


def read_private(path: Path, limit: int = MAX_FILE) -> bytes:
    """A regular file of root's, at most ``limit`` bytes (the rest is not read), no link followed."""
    with open_private(path, "rb") as f:
        return f.read(limit)


def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """``data`` as the file ``path`` (root's, in a root-only directory): written to a new file beside it
    (``O_EXCL``, ``mode``) and renamed over ``path``, so whatever ``path`` was (a link too) is replaced,
    never written through."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def append_private(path: Path, data: bytes, cap: int) -> bool:
    """Append ``data`` to root's file ``path`` unless that would make it larger than ``cap``; False then
    (nothing written). No link followed."""
    with open_private(path, "ab") as f:
        if os.fstat(f.fileno()).st_size + len(data) > cap:
            return False
        f.write(data)
    return True


def copy_file(src: Path, dst: Path, *, limit: int = MAX_FILE, mode: int = 0o600) -> bool:
    """Root's regular file ``src`` to ``dst`` (see :func:`write_private`), at most ``limit`` bytes (a
    longer one is cut, and the copy says so at its end). False if ``src`` is not a regular file."""
    try:
        with open_private(src, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return False
    if len(data) > limit:
        data = data[:limit] + f"\n[... cut at {limit} bytes]\n".encode()
    write_private(dst, data, mode)
    return True


def remove_tree(path: Path) -> None:
    """Delete ``path`` and what is below it; a link is removed, never followed (shutil.rmtree's fd-based
    walk does not follow links below; a link at ``path`` itself is unlinked)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_BLOCK = 4096  # what an entry costs on disk at least (a directory, an empty file): counted against the cap
_MAX_HEADER = 64 << 10  # a pax or GNU long-name header: a name and a few keys, never more


class TimedReader(io.RawIOBase):
    """A pipe's reading end as a file that gives at most ``limit`` bytes in all and waits for them only until
    ``deadline`` (``time.monotonic()``): past either, :class:`Refused`. A writer that stalls, or hands its end
    to a process no one can kill, cannot hold the reader, nor can a flood grow it."""

    def __init__(self, fd: int, limit: int, deadline: float) -> None:
        super().__init__()
        self.fd, self.left, self.deadline = fd, limit, deadline
        self.poll = select.poll()
        self.poll.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0 or not self.poll.poll(left * 1000):
            raise Refused("its writer did not finish in time")
        chunk = os.read(self.fd, min(len(buf), 1 << 20, self.left + 1))
        if len(chunk) > self.left:
            raise Refused("more bytes than its cap")
        self.left -= len(chunk)
        buf[:len(chunk)] = chunk
        return len(chunk)


def _strict_tarinfo() -> type:
    import tarfile

    class Strict(tarfile.TarInfo):
        """Refuses, before reading them, what tarfile would hold whole in memory (a long header) or expand
        beyond the stream (a sparse file): an engine's packages have neither."""

        def _proc_gnulong(self, tf: Any) -> Any:
            if self.size > _MAX_HEADER:
                raise tarfile.HeaderError(f"a long-name header of {self.size} bytes")
            return super()._proc_gnulong(tf)  # type: ignore[misc]

        def _proc_pax(self, tf: Any) -> Any:
            if self.size > _MAX_HEADER:
                raise tarfile.HeaderError(f"a pax header of {self.size} bytes")
            return super()._proc_pax(tf)  # type: ignore[misc]

        def _proc_sparse(self, tf: Any) -> Any:
            raise tarfile.HeaderError("a sparse file")

    return Strict


def extract_tar_stream(stream: IO[bytes] | io.RawIOBase, dst: Path, *, max_bytes: int, max_members: int = 20000,
                       max_depth: int = 64) -> None:
    """Unpack a tar stream someone untrusted made into ``dst`` (an empty directory of the caller's, in a place
    no one else can write) as the caller's own files: directories (0755), regular files (0755 if the entry
    had an execute bit, else 0644; no set-id bits), hard links within the stream (copied) and symbolic links
    (made last, so nothing is ever written through one). Anything else (a device, a FIFO, a sparse file), a
    name that climbs out, runs below a link or holds a NUL, a name given twice, more than ``max_members``
    entries, names deeper than ``max_depth``, more than ``max_bytes`` unpacked (each entry counted at least a
    disk block) or a header tarfile would hold whole is :class:`Refused`, as is a stream that ends early;
    what was unpacked stays for the caller to remove. ``stream`` is read once, front to back: give a pipe as a
    :class:`TimedReader` (its cap and deadline bound the stream itself)."""
    import tarfile

    seen: set[str] = set()
    links: dict[str, str] = {}
    files: dict[str, Path] = {}
    used = count = 0

    def spend(n: int, name: str) -> None:
        nonlocal used
        used += n
        if n < 0 or used > max_bytes:
            raise Refused(f"{name}: more than {max_bytes} bytes unpacked")

    def write(path: Path, src: IO[bytes], mode: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            os.fchmod(out.fileno(), mode)

    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_strict_tarinfo()) as tf:
            for m in tf:
                count += 1
                if count > max_members:
                    raise Refused(f"more than {max_members} entries")
                if "\0" in m.name or "\0" in m.linkname:
                    raise Refused(f"{m.name!r}: a name with a NUL")
                if m.sparse is not None or any(k.startswith("GNU.sparse") for k in m.pax_headers):
                    raise Refused(f"{m.name!r}: a sparse file")
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if not parts and m.isdir():
                    continue  # "./", the top itself
                rel = "/".join(parts)
                if not parts or m.name.startswith("/") or ".." in parts or len(parts) > max_depth:
                    raise Refused(f"{m.name!r}: not a name inside the tree")
                if rel in seen or any("/".join(parts[:i]) in links for i in range(1, len(parts))):
                    raise Refused(f"{rel}: given twice, or below a link")
                seen.add(rel)
                spend(_BLOCK + (m.size if m.isreg() else 0), rel)
                path = dst / rel
                if m.isdir():
                    os.mkdir(path, 0o700)
                    os.chmod(path, 0o755)
                elif m.isreg():
                    src = tf.extractfile(m)
                    if src is None:
                        raise Refused(f"{rel}: no content")
                    write(path, src, 0o755 if m.mode & 0o111 else 0o644)
                    files[rel] = path
                elif m.islnk():
                    target = "/".join(p for p in m.linkname.split("/") if p not in ("", "."))
                    if target not in files:
                        raise Refused(f"{rel}: a hard link to {m.linkname!r}, not a file of the stream")
                    st = os.lstat(files[target])
                    spend(st.st_size, rel)
                    with open(files[target], "rb") as src_file:
                        write(path, src_file, stat.S_IMODE(st.st_mode))
                    files[rel] = path
                elif m.issym():
                    links[rel] = m.linkname
                else:
                    raise Refused(f"{rel}: a {'device' if m.ischr() or m.isblk() else 'FIFO or other entry'}")
    except Refused:
        raise
    except (tarfile.TarError, EOFError, ValueError, RecursionError) as e:  # ValueError: UnicodeError too
        raise Refused(f"not a whole, plain tar stream ({type(e).__name__}: {str(e)[:200]})") from None
    for rel, target in links.items():
        os.symlink(target, dst / rel)


_KERNEL_TOPS = ("/sys", "/proc", "/run/netns")  # /run/netns: iproute2's bind mounts of namespaces
# /proc/<pid>/ entries that are magic links (or directories of them): opening through one reaches another
# process's root, working directory, program or open files, wherever they are
_MAGIC = frozenset({"root", "cwd", "exe", "fd", "map_files"})


def _under(path: str, tops: tuple[str, ...]) -> str:
    return next((t for t in tops if path == t or path.startswith(t + "/")), "")


def _kernel_path(path: Path | str, tops: tuple[str, ...] = _KERNEL_TOPS, namespace: bool = False) -> str:
    """``path`` resolved, if it is a kernel file under ``tops`` reached without a magic link of /proc
    (``/proc/<pid>/root``, ``cwd``, ``exe``, ``fd/*``, ``map_files/*``); a namespace file
    (``/proc/<pid>/ns/*``, ``/run/netns/*``) only with ``namespace`` (opened for ``setns``, never read)."""
    p = os.path.abspath(path)
    top = _under(p, tops)
    if not top or p == top:
        raise Refused(f"{p} is not a kernel file ({', '.join(tops)})")
    parts = p.split("/")
    if top == "/proc" and len(parts) > 3:  # "", "proc", "<pid>|self|thread-self", ...
        rest = parts[3:]
        if rest[0] == "task" and len(rest) > 2:
            rest = rest[2:]
        if rest[0] in _MAGIC:
            raise Refused(f"{p} is a link of /proc to another place, not a kernel file")
        if rest[0] == "ns" and not namespace:
            raise Refused(f"{p} is a namespace, not a kernel file to read or write")
    if top == "/run/netns" and not namespace:
        raise Refused(f"{p} is a namespace, not a kernel file to read or write")
    head, name = os.path.split(p)
    real = os.path.join(os.path.realpath(head), name) if namespace else os.path.realpath(p)
    if _under(real, tops) != top:  # an ordinary link that leaves its place (cgroup v1's cpu -> cpu,cpuacct stays)
        raise Refused(f"{p} leads to {real}, outside {top}")
    return real


def open_kernel(path: Path | str) -> int:
    """An fd of a namespace file (``/proc/<pid>/ns/net``, ``/run/netns/NAME``) for ``setns``, read-only."""
    return os.open(_kernel_path(path, namespace=True), os.O_RDONLY | os.O_CLOEXEC)


def read_kernel(path: Path | str, limit: int = 1 << 20) -> str:
    """A file of the kernel's (``/sys``, ``/proc``), text, at most ``limit`` bytes."""
    fd = os.open(_kernel_path(path, ("/sys", "/proc")), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read(limit).decode(errors="replace")


def write_kernel(path: Path | str, value: object) -> None:
    """Write ``value`` to a kernel file that exists (a cgroup knob): never created, no link followed."""
    fd = os.open(_kernel_path(path, ("/sys", "/proc")), os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "w") as f:
        f.write(str(value))


# -- pipes and sockets -------------------------------------------------------------------------------

def read_bounded(stream: IO[bytes] | io.RawIOBase | int, limit: int) -> tuple[bytes, bool]:
    """Read ``stream`` (a pipe, a socket's file, an fd) to its end, keeping at most ``limit`` bytes;
    the rest is read and dropped. Returns (kept, True if something was dropped)."""
    read = (lambda n: os.read(stream, n)) if isinstance(stream, int) else stream.read  # noqa: E731
    kept = bytearray()
    dropped = False
    while chunk := read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            dropped = True
    return bytes(kept), dropped


class LineReader:
    """Lines of a pipe, each at most ``max_line`` bytes (a longer one is cut there and the rest of it
    dropped), at most ``max_lines`` of them kept (the rest read and dropped): a flood never grows."""

    def __init__(self, stream: IO[bytes], max_line: int = 4096, max_lines: int = 10_000) -> None:
        self.stream, self.max_line, self.max_lines = stream, max_line, max_lines
        self.dropped = 0

    def __iter__(self) -> Iterator[bytes]:
        n = 0
        while True:
            line = self.stream.readline(self.max_line)
            if not line:
                return
            if not line.endswith(b"\n"):  # cut: skip to the end of that line, a bounded chunk at a time
                while (more := self.stream.readline(self.max_line)) and not more.endswith(b"\n"):
                    pass
            n += 1
            if n > self.max_lines:
                self.dropped += 1
                continue
            yield line
