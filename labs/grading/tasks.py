"""The checks of the four labs, one per graded task; each reads the engine (and the registries)
and returns a :class:`~kernel_ext.check.CheckResult` with a reason a learner can act on. Registries
are asked through :mod:`labcore.distribution`, the project's one registry client.

The constants are the values the notebooks hand out (the given cells are locked, so the
notebooks and these checks agree; ``tests/test_labs_notebooks.py`` keeps them in step).
"""

from __future__ import annotations

import io
import re
import tarfile
import time
import urllib.request
from typing import Any

from labcore import distribution

from labs.grading.checklist import CheckResult, check
from labs.grading.engine import mirror_address, published_url, registry_address
from labs.grading.messages import t

__all__ = [
    "AUTHOR",
    "MESSAGE",
    "NAMESPACE",
    "PAGE",
    "PORT",
    "manifest_digest",
    "read_file",
    "registry_tags",
]

PAGE = "<h1>Docker Lab: web v2</h1>"
AUTHOR = "Docker Lab 学员 <learner@dockerlab.local>"
MESSAGE = "首页换成 Docker Lab 欢迎页"
PORT = 8082
NAMESPACE = "lab4"
PAGE_PATH = "/usr/share/nginx/html/index.html"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_READ = 1 << 20  # bytes the check service (root's) reads of a file or page the submission made


# -- engine and registry helpers -------------------------------------------------------------
def _listed_size(client: Any, img: Any) -> int:
    """The size ``docker images`` shows. Under the containerd image store that is the disk usage
    (compressed content + unpacked layers), while inspect's ``Size`` is the compressed content."""
    for row in client.api.images(filters={"reference": img.tags[0]} if img.tags else None):
        if row["Id"] == img.id:
            return int(row["Size"])
    return int(img.attrs["Size"])


def _image(client: Any, ref: str) -> Any | None:
    import docker

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _listing(client: Any, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``docker images`` rows (Id, RepoTags, RepoDigests) in one call. docker-py's
    ``images.list()`` inspects each image afterwards and fails if one goes meanwhile."""
    rows = client.api.images(filters=filters)
    for r in rows:
        r["RepoTags"] = [t for t in r.get("RepoTags") or [] if t != "<none>:<none>"]
        r["RepoDigests"] = [d for d in r.get("RepoDigests") or [] if d != "<none>@<none>"]
    return list(rows)


def _container(client: Any, name: str) -> Any | None:
    import docker

    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def _archive(client: Any, container: str, path: str) -> bytes | None:
    """docker-py's ``get_archive``, but at most :data:`MAX_READ` (and a tar header's worth) is read of
    what the submission put there; a larger file is refused by its stat header, and the engine's stream
    is closed either way (an archive left half-read holds the container: it could not be removed)."""
    from docker.utils import decode_json_header

    api = client.api
    res = api._get(api._url("/containers/{0}/archive", container), params={"path": path}, stream=True,
                   headers={"Accept-Encoding": "identity"})
    try:
        api._raise_for_status(res)
        stat = res.headers.get("x-docker-container-path-stat")
        if stat and int((decode_json_header(stat) or {}).get("size") or 0) > MAX_READ:
            return None
        data = bytearray()
        for chunk in res.iter_content(64 << 10):
            data += chunk
            if len(data) > MAX_READ + (64 << 10):
                return None
        return bytes(data)
    finally:
        res.close()


def read_file(client: Any, image_or_container: str, path: str, *, container: bool = False) -> str | None:
    """Text of ``path`` in an image (through a created, never started container) or container."""
    import docker

    made = None
    try:
        target = client.containers.get(image_or_container) if container else \
            (made := client.containers.create(image_or_container, command=["true"]))
        data = _archive(client, target.id, path)
        if data is None:
            return None
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            return member.read(MAX_READ).decode(errors="replace") if member else None
    except (docker.errors.NotFound, docker.errors.APIError, IndexError, tarfile.TarError, ValueError):
        return None
    finally:
        if made is not None:
            made.remove(force=True)


def manifest_digest(addr: str, repo: str, ref: str) -> str | None:
    """The registry's digest of ``repo:ref``; None if it has no such manifest (or refuses)."""
    try:
        return distribution.manifest_digest(addr, repo, ref) or None
    except distribution.Unreachable:
        raise
    except distribution.RegistryError:
        return None


def registry_tags(addr: str, repo: str) -> list[str]:
    """The tags of ``repo`` in the registry, sorted; [] if it has no such repository."""
    try:
        return distribution.tags(addr, repo)
    except distribution.Unreachable:
        raise
    except distribution.RegistryError:
        return []


def _page(url: str) -> str:
    """The first :data:`MAX_READ` bytes the submission's published port answers with."""
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read(MAX_READ).decode(errors="replace"))


def _unset(var: str, value: Any) -> CheckResult:
    return CheckResult(False, t("labs.unset", var=var, value=value))


def _no_image(ref: str, hint: str) -> CheckResult:
    return CheckResult(False, t("labs.no_image", ref=ref, hint=hint))


# -- lab 1 -----------------------------------------------------------------------------------
@check("lab1.pin")
def lab1_pin(client: Any, pinned: Any = None) -> CheckResult:
    if not pinned:
        return _unset("PINNED", pinned)
    name, _, digest = str(pinned).partition("@")
    if name.split("/")[-1] != "busybox" or not _DIGEST.match(digest):
        return CheckResult(False, t("lab1.pin.shape", value=pinned))
    want = manifest_digest(mirror_address(), "library/busybox", "1.35")
    if digest != want:
        return CheckResult(False, t("lab1.pin.wrong", got=digest[:19], want=str(want)[:19]))
    if _image(client, f"busybox@{digest}") is None:
        return _no_image(pinned, "lab.pull(PINNED)")
    return CheckResult(True, t("lab1.pin.ok"))


@check("lab1.layers")
def lab1_layers(client: Any, layers: Any = None, size_mb: Any = None) -> CheckResult:
    img = _image(client, "nginx:1.22")
    if img is None:
        return _no_image("nginx:1.22", "lab.pull('nginx:1.22')")
    want = len(img.attrs["RootFS"]["Layers"])
    if layers != want:
        return CheckResult(False, t("lab1.layers.count", want=want, got=layers))
    size = _listed_size(client, img) / 1e6
    if not isinstance(size_mb, (int, float)) or abs(size_mb - size) > 0.5:
        return CheckResult(False, t("lab1.layers.size", want=size, got=size_mb))
    return CheckResult(True, t("lab1.layers.ok"))


@check("lab1.shared")
def lab1_shared(client: Any, shared: Any = None) -> CheckResult:
    images = {ref: _image(client, ref) for ref in ("nginx:1.22", "redis:7.0")}
    for ref, img in images.items():
        if img is None:
            return _no_image(ref, f"lab.pull('{ref}')")
    if not shared:
        return _unset("SHARED", shared)
    a, b = (set(img.attrs["RootFS"]["Layers"]) for img in images.values() if img is not None)
    want, got = a & b, set(shared) if isinstance(shared, list) else {shared}
    if got != want:
        detail = "" if len(got) != len(want) else t("lab1.shared.differ")
        return CheckResult(False, t("lab1.shared.wrong", got=len(got), want=len(want), detail=detail))
    return CheckResult(True, t("lab1.shared.ok", n=len(want)))


# -- lab 2 -----------------------------------------------------------------------------------
@check("lab2.dangling")
def lab2_dangling(client: Any, old_id: Any = None) -> CheckResult:
    if not old_id:
        return _unset("OLD_ID", old_id)
    old = _image(client, str(old_id))
    if old is None:
        return _no_image(str(old_id), "OLD_ID = lab.image('practice/app:latest')['Id']")
    new = _image(client, "practice/app:latest")
    if new is None:
        return _no_image("practice/app:latest", "lab.commit(container, 'practice/app:latest')")
    if new.id == old.id:
        return CheckResult(False, t("lab2.dangling.same"))
    if old.tags:
        return CheckResult(False, t("lab2.dangling.tagged", id=old.short_id, tags=old.tags))
    if old.id not in {r["Id"] for r in _listing(client, {"dangling": True})}:
        return CheckResult(False, t("lab2.dangling.parent", id=old.short_id))
    version = (read_file(client, "practice/app:latest", "/version") or "").strip()
    if version != "2":
        return CheckResult(False, t("lab2.dangling.content", got=version))
    return CheckResult(True, t("lab2.dangling.ok"))


def _short(ids: Any) -> set[str]:
    return {str(i).removeprefix("sha256:")[:12] for i in (ids or [])}


@check("lab2.list")
def lab2_list(client: Any, dangling: Any = None, practice: Any = None) -> CheckResult:
    want_d = _short(r["Id"] for r in _listing(client, {"dangling": True}))
    if dangling is None or _short(dangling) != want_d:
        return CheckResult(False, t("lab2.list.dangling", got=sorted(_short(dangling)), want=sorted(want_d)))
    want_p = {tag for r in _listing(client, {"reference": "practice/*"}) for tag in r["RepoTags"]
              if tag.startswith("practice/")}
    got_p = {str(x).strip() for x in (practice or [])}
    if got_p != want_p:
        return CheckResult(False, t("lab2.list.practice", got=sorted(got_p), want=sorted(want_p)))
    return CheckResult(True, t("lab2.list.ok"))


KEEP = ("decoy/keep:tmp", "practice/app:latest", "busybox:1.35")


@check("lab2.cleanup")
def lab2_cleanup(client: Any) -> CheckResult:
    left = [r["Id"][7:19] for r in _listing(client, {"dangling": True})]
    left += [tag for r in _listing(client, {"reference": "practice/*:tmp"}) for tag in r["RepoTags"]
             if tag.startswith("practice/") and tag.endswith(":tmp")]
    if left:
        return CheckResult(False, t("lab2.cleanup.left", refs=", ".join(sorted(left))))
    lost = [ref for ref in KEEP if _image(client, ref) is None]
    if lost:
        return CheckResult(False, t("lab2.cleanup.lost", refs=", ".join(lost)))
    return CheckResult(True, t("lab2.cleanup.ok"))


# -- lab 3 -----------------------------------------------------------------------------------
def _running(client: Any, name: str, hint: str) -> tuple[Any, CheckResult | None]:
    c = _container(client, name)
    if c is None:
        return None, CheckResult(False, t("labs.no_container", name=name, hint=hint))
    if c.status != "running":
        return None, CheckResult(False, t("labs.not_running", name=name, status=c.status))
    return c, None


@check("lab3.edit")
def lab3_edit(client: Any, changed: Any = None) -> CheckResult:
    c, bad = _running(client, "lab3-edit", "lab.run('nginx:1.22', name='lab3-edit')")
    if bad is not None:
        return bad
    base = _image(client, "nginx:1.22")
    if base is None or c.image.id != base.id:
        return CheckResult(False, t("lab3.edit.image", image=c.attrs["Config"]["Image"]))
    page = read_file(client, "lab3-edit", PAGE_PATH, container=True) or ""
    if page.strip() != PAGE:
        return CheckResult(False, t("lab3.edit.page", got=page.strip()[:30]))
    real = {d["Path"] for d in c.diff() or []}
    got = set(changed or []) if isinstance(changed, list) else set()
    if PAGE_PATH not in got or not got <= real:
        return CheckResult(False, t("lab3.edit.diff", path=PAGE_PATH, extra=sorted(got - real)[:3]))
    return CheckResult(True, t("lab3.edit.ok"))


@check("lab3.commit")
def lab3_commit(client: Any) -> CheckResult:
    img, base = _image(client, "web:v2"), _image(client, "nginx:1.22")
    if img is None:
        return _no_image("web:v2", "lab.commit(container, 'web:v2', author=..., message=...)")
    if img.attrs.get("Author") != AUTHOR:
        return CheckResult(False, t("lab3.commit.author", got=img.attrs.get("Author"), want=AUTHOR))
    top = img.history()[0]
    if (top.get("Comment") or "") != MESSAGE:
        return CheckResult(False, t("lab3.commit.message", got=top.get("Comment"), want=MESSAGE))
    layers, base_layers = img.attrs["RootFS"]["Layers"], base.attrs["RootFS"]["Layers"] if base else [None]
    if layers[:len(base_layers)] != base_layers:
        return CheckResult(False, t("lab3.commit.base"))
    if (read_file(client, "web:v2", PAGE_PATH) or "").strip() != PAGE:
        return CheckResult(False, t("lab3.commit.page"))
    return CheckResult(True, t("lab3.commit.ok"))


@check("lab3.serve")
def lab3_serve(client: Any) -> CheckResult:
    c, bad = _running(client, "lab3-web", f"lab.run('web:v2', name='lab3-web', ports={{'80/tcp': {PORT}}})")
    if bad is not None:
        return bad
    img = _image(client, "web:v2")
    if img is None or c.image.id != img.id:
        return CheckResult(False, t("lab3.serve.image", image=c.attrs["Config"]["Image"]))
    bindings = (c.attrs["NetworkSettings"]["Ports"] or {}).get("80/tcp") or []
    if str(PORT) not in {b["HostPort"] for b in bindings}:
        return CheckResult(False, t("lab3.serve.port", port=PORT, got=[b["HostPort"] for b in bindings]))
    url = published_url("lab3-web", 80)
    err: Exception | str = ""
    deadline = time.monotonic() + 10  # nginx may still be starting: wait for it, not for a clock
    while time.monotonic() < deadline:
        try:
            body = _page(url)
            if PAGE in body:
                return CheckResult(True, t("lab3.serve.ok", url=f"…:{PORT}/"))
            err = body.strip()[:40]
            break
        except OSError as e:
            err = e
            time.sleep(0.2)
    return CheckResult(False, t("lab3.serve.http", url=f"…:{PORT}/", err=err))


# -- lab 4 -----------------------------------------------------------------------------------
@check("lab4.push")
def lab4_push(client: Any, digest: Any = None) -> CheckResult:
    addr, repo = registry_address(), f"{NAMESPACE}/tools"
    tags = registry_tags(addr, repo)
    if "1.0" not in tags:
        return CheckResult(False, t("lab4.push.missing", addr=addr, repo=repo, tags=tags))
    want = manifest_digest(addr, repo, "1.0")
    if digest != want:
        return CheckResult(False, t("lab4.push.digest", got=digest, want=want, repo=repo))
    return CheckResult(True, t("lab4.push.ok", repo=repo))


@check("lab4.digest")
def lab4_digest(client: Any, digest: Any = None) -> CheckResult:
    repo = f"{registry_address()}/{NAMESPACE}/tools"
    if any(f"{repo}:1.0" in r["RepoTags"] for r in _listing(client)):
        return CheckResult(False, t("lab4.digest.tag_left", ref=f"{repo}:1.0"))
    if not digest:
        return _unset("PUSHED_DIGEST", digest)
    wanted = f"{repo}@{digest}"
    # The containerd image store lists an image pulled by digest under RepoTags (``repo@sha256:…``)
    # and may leave it out of the merged row's RepoDigests; older engines put it in RepoDigests.
    if not any(wanted in r["RepoDigests"] or wanted in r["RepoTags"] for r in _listing(client)):
        return CheckResult(False, t("lab4.digest.not_pulled", ref=f"{NAMESPACE}/tools@{str(digest)[:19]}…"))
    return CheckResult(True, t("lab4.digest.ok"))


@check("lab4.mirror")
def lab4_mirror(client: Any, mirrors: Any = None, tags: Any = None) -> CheckResult:
    want = client.info().get("RegistryConfig", {}).get("Mirrors") or []
    if not mirrors or list(mirrors) != want:
        return CheckResult(False, t("lab4.mirror.list", got=mirrors, want=want))
    if _image(client, "hello-world:latest") is None:
        return _no_image("hello-world:latest", "lab.pull('hello-world')")
    real = registry_tags(mirror_address(), "library/hello-world")
    if not tags or sorted(tags) != real:
        return CheckResult(False, t("lab4.mirror.tags", got=tags, want=real))
    return CheckResult(True, t("lab4.mirror.ok"))


# -- lab 5 -----------------------------------------------------------------------------------
LAB5_PAGE = "<h1>Docker Lab 实验 5</h1>"
LAB5_WEB, LAB5_WEB_PORT = "lab5/web:1", 8085
LAB5_SMALL, LAB5_SMALL_PORT, LAB5_MAX_MB = "lab5/small:1", 8086, 10
LAB5_USER, LAB5_USER_PORT = "lab5/user:1", 8087
LAB5_SHELL = re.compile(r"^(?:\|\d+ .*?)?/bin/sh -c ")  # the classic builder's RUN (with build args: |N …)


def _layers(img: Any) -> list[str]:
    return list(img.attrs["RootFS"]["Layers"])


def _built_on(client: Any, ref: str, base_ref: str) -> tuple[Any, CheckResult | None]:
    """``ref`` and a reason if it is missing, not built on ``base_ref`` or not made by ``docker build``.

    Made by a Dockerfile means: every history entry above the base's is an instruction of a builder.
    BuildKit marks each one ``buildkit.dockerfile.v0``; the classic builder (the engine's own, used when
    the CLI has no buildx plugin) writes ``/bin/sh -c …`` for ``RUN`` and ``/bin/sh -c #(nop) …`` for
    the others. ``docker commit`` writes the container's command (``nginx -g daemon off;``) and the
    ``-m`` message instead."""
    img, base = _image(client, ref), _image(client, base_ref)
    if img is None:
        return None, _no_image(ref, t("lab5.hint.build", ref=ref))
    if base is None:
        return None, _no_image(base_ref, f"lab.pull('{base_ref}')")
    if _layers(img)[:len(_layers(base))] != _layers(base):
        return None, CheckResult(False, t("lab5.base", ref=ref, base=base_ref))
    history, base_history = img.history(), base.history()
    own = history[:max(0, len(history) - len(base_history))]
    if not own:
        return None, CheckResult(False, t("lab5.same_as_base", ref=ref, base=base_ref))
    for h in own:
        by = str(h.get("CreatedBy") or "")
        if h.get("Comment") != "buildkit.dockerfile.v0" and not LAB5_SHELL.match(by):
            return None, CheckResult(False, t("lab5.not_built", ref=ref, by=by[:50]))
    return img, None


def _serves(client: Any, name: str, ref: str, port: int, want: tuple[str, ...]) -> CheckResult | None:
    """A reason if container ``name`` is not running ``ref`` with ``want`` served on host ``port``."""
    c, bad = _running(client, name, f"docker run -d --name {name} -p {port}:… {ref}")
    if bad is not None:
        return bad
    img = _image(client, ref)  # c.image would fail when a rebuild left the container's image untagged
    if img is None or c.attrs.get("Image") != img.id:
        return CheckResult(False, t("lab5.container_image", name=name, ref=ref, image=str(c.attrs.get("Image"))[7:19]))
    ports = c.attrs["NetworkSettings"]["Ports"] or {}
    inside = next((p for p, bindings in ports.items() for b in bindings or [] if b["HostPort"] == str(port)), None)
    if inside is None:
        return CheckResult(False, t("lab5.port", name=name, port=port))
    url = published_url(name, int(inside.split("/")[0]))
    err: Exception | str = ""
    deadline = time.monotonic() + 10  # the server may still be starting: wait for it, not for a clock
    while time.monotonic() < deadline:
        try:
            body = _page(url)
            missing = [w for w in want if w not in body]
            if not missing:
                return None
            err = t("lab5.page_lacks", what=missing[0], got=body.strip()[:60])
            break
        except OSError as e:
            err = e
            time.sleep(0.2)
    return CheckResult(False, t("lab3.serve.http", url=f"…:{port}/", err=err))


def _run_id(client: Any, ref: str) -> tuple[str | None, str]:
    """``id -u`` in a fresh container of ``ref`` with the image's own user (never ``--user``):
    (the uid, "") or (None, what went wrong). At most 4 KB of its output is read."""
    import docker

    c = None
    try:
        c = client.containers.create(ref, entrypoint=["id"], command=["-u"])
        c.start()
        c.wait(timeout=30)
        out = b""
        for chunk in client.api.logs(c.id, stdout=True, stderr=True, stream=True, follow=False):
            out += chunk
            if len(out) > 4096:
                break
        text = out.decode(errors="replace").strip()
        return (text, "") if text.isdigit() else (None, text[:120])
    except (docker.errors.APIError, docker.errors.NotFound) as e:
        return None, str(getattr(e, "explanation", None) or e)[:160]
    except Exception as e:  # the wait timed out
        return None, f"{type(e).__name__}: {e}"[:160]
    finally:
        if c is not None:
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass


@check("lab5.web")
def lab5_web(client: Any) -> CheckResult:
    _, bad = _built_on(client, LAB5_WEB, "nginx:1.22")
    if bad is not None:
        return bad
    bad = _serves(client, "lab5-web", LAB5_WEB, LAB5_WEB_PORT, (LAB5_PAGE,))
    return bad if bad is not None else CheckResult(True, t("lab5.web.ok", ref=LAB5_WEB, port=LAB5_WEB_PORT))


@check("lab5.small")
def lab5_small(client: Any) -> CheckResult:
    img, bad = _built_on(client, LAB5_SMALL, "busybox:1.35")
    if bad is not None:
        return bad
    size = _listed_size(client, img) / 1e6
    if size >= LAB5_MAX_MB:
        return CheckResult(False, t("lab5.small.size", ref=LAB5_SMALL, mb=round(size, 1), max=LAB5_MAX_MB))
    version = (read_file(client, "nginx:1.22", "/etc/debian_version") or "").strip()
    if not version:
        return _no_image("nginx:1.22", "lab.pull('nginx:1.22')")
    bad = _serves(client, "lab5-small", LAB5_SMALL, LAB5_SMALL_PORT, (LAB5_PAGE, f"Debian {version}"))
    return bad if bad is not None else CheckResult(True, t("lab5.small.ok", ref=LAB5_SMALL, mb=round(size, 1)))


@check("lab5.user")
def lab5_user(client: Any) -> CheckResult:
    _, bad = _built_on(client, LAB5_USER, LAB5_SMALL)
    if bad is not None:
        return bad
    uid, err = _run_id(client, LAB5_USER)
    if uid is None:
        return CheckResult(False, t("lab5.user.id_failed", ref=LAB5_USER, err=err))
    if uid == "0":
        return CheckResult(False, t("lab5.user.root", ref=LAB5_USER))
    bad = _serves(client, "lab5-user", LAB5_USER, LAB5_USER_PORT, (LAB5_PAGE,))
    return bad if bad is not None else CheckResult(True, t("lab5.user.ok", ref=LAB5_USER, uid=uid))
