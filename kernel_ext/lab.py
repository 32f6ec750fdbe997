"""The :class:`Lab`: one connection to the engine, and every object it makes carries the session label."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from . import containers as _c
from . import errors
from .connection import SESSION_LABEL, LabConfig, engine_errors, lab_config, new_session_id
from .engine_api import image_list
from .formatting import short_id
from .images import DiskUsage, ImageTable, disk_usage_from, image_rows
from .messages import t
from .names import aliases, own
from .pull import LayerPull, PullProgress, PullResult, follow_pull_stream
from .refs import Reference, is_image_id, parse
from .removal import CleanupReport, Kept, RemovalReport, chain_ids

__all__ = ["CleanupReport", "Lab", "connect", "default_pull_listener"]

# Set by the IPython extension to a factory that makes a live view; the API never imports widgets.
default_pull_listener: list[Callable[[str], Callable[[PullProgress], None]] | None] = [None]


class Lab:
    """The lab's engine. ``lab.client`` is the docker-py client for anything not wrapped here."""

    def __init__(self, config: LabConfig, session: str | None = None) -> None:
        self.config = config
        self.session = session or new_session_id()
        with engine_errors(config.docker_host):
            self.client = docker.DockerClient(base_url=config.docker_host, timeout=300)
        self.api = self.client.api

    def __repr__(self) -> str:
        return f"<Lab session={self.session!r} engine={self.config.docker_host!r}>"

    @property
    def labels(self) -> dict[str, str]:
        return {SESSION_LABEL: self.session}

    def _errors(self, ref: str = "", name: str = "") -> Any:
        return engine_errors(self.config.docker_host, ref=ref, name=name)

    def ping(self) -> bool:
        with self._errors():
            return bool(self.client.ping())

    # -- images -------------------------------------------------------------------------------
    def pull(self, ref: str, progress: Callable[[PullProgress], None] | bool | None = None) -> PullResult:
        """Pull ``ref`` (``nginx``, ``nginx:1.22``, ``name@sha256:...``) and say what arrived.

        ``progress``: a listener called with the live :class:`PullProgress` (throttled), ``True``/``None``
        for the notebook's live view when the extension is loaded, ``False`` for none. The live view
        closes once the pull is done (or failed): display the returned result to see what arrived.
        """
        if ref in aliases:  # the learner's own image holds the name: the course's copy goes under its own
            return self.pull_as(ref, aliases[ref], progress)
        r = parse(ref)
        listener: Callable[[PullProgress], None] | None = None
        if callable(progress):
            listener = progress
        elif progress is not False and default_pull_listener[0] is not None:
            listener = default_pull_listener[0](ref)
        state = PullProgress(ref=ref)
        try:
            return self._pull(r, state, listener)
        except BaseException:
            if listener is not None and not state.done:  # a live view closes; the error says why
                state.done, state.error = True, state.error or "failed"
                listener(state)
            raise

    def pull_as(self, ref: str, name: str,
                progress: Callable[[PullProgress], None] | bool | None = None) -> PullResult:
        """Pull the course's ``ref`` under the name ``name``, leaving whatever ``ref`` names now alone:
        from the lab's registry by its address, tagged ``name``, the address name removed again."""
        r = parse(ref)
        reg = self.config.upstream or self.config.mirror
        if r.domain or r.digest or not reg:
            raise errors.Conflict("pull.taken", ref=ref)
        path = r.path if "/" in r.path else f"library/{r.path}"
        result = self.pull(f"{reg}/{path}:{r.tag or 'latest'}", progress=progress)
        target = parse(name)
        with self._errors(ref=ref):
            self.api.tag(result.image_id, target.repository, target.tag or "latest")
            self.api.remove_image(result.ref, noprune=True)  # only the address name: the image keeps ``name``
        return dataclasses.replace(result, ref=name)

    def _pull(self, r: Reference, state: PullProgress, listener: Callable[[PullProgress], None] | None) -> PullResult:
        ref, repo, tag = state.ref, r.repository, r.digest or r.tag or "latest"
        try:
            with self._errors(ref=ref):
                stream = self.api.pull(repo, tag=tag, stream=True, decode=True)
                follow_pull_stream(stream, state, listener)
                if state.error:
                    raise docker.errors.APIError(state.error, explanation=state.error)
        except errors.RegistryUnavailable as e:
            # A Docker Hub name the mirror lacks falls through to docker.io, which is offline here:
            # if the mirror itself answers, the image is what is missing, not the registry.
            if not r.domain and self.config.mirror and _answers(self.config.mirror):
                raise errors.ImageNotFound("image.notfound.remote", ref=ref) from e
            raise
        pulled = f"{repo}@{tag}" if r.digest else f"{repo}:{tag}"
        with self._errors(ref=ref):
            info = self.api.inspect_image(pulled)
        manifest = self._manifest_layers(r, state.digest or r.digest, info)
        if manifest:
            state.add_manifest(manifest)
            if listener is not None:
                listener(state)
        layers = tuple(LayerPull(lid, 0 if lp.already_present else lp.total, lp.already_present)
                       for lid, lp in state.layers.items())
        state.log.append(r.familiar if not r.digest else pulled)
        return PullResult(ref=pulled, image_id=info["Id"], digest=state.digest, status=state.status,
                          layers=layers, log=tuple(state.log))

    def _manifest_layers(self, r: Reference, digest: str, info: dict[str, Any]) -> list[tuple[str, int]]:
        """The pulled image's layers from the registry that served it (the lab's registries speak
        plain HTTP on loopback); ``[]`` when that registry cannot be asked."""
        from .registry import image_layers

        registry = r.domain or self.config.mirror
        if not digest or not registry:
            return []
        platform = (str(info.get("Os", "linux")), str(info.get("Architecture", "amd64")))
        try:
            return image_layers(r.path if r.domain else r.hub_path, digest, registry, platform)
        except errors.LabError:
            return []

    def images(self, all: bool = False, filters: dict[str, Any] | None = None,
               digests: bool = False, shared: bool = False) -> ImageTable:
        """``docker image ls [-a] [-f ...]``; filters: dangling, before, since, label, reference.

        ``shared=True`` also asks the engine (``system df``, slower) for each image's shared and unique size.
        """
        with self._errors():
            imgs = image_list(self.api, all=all, filters=filters)
            df = (self.api.df().get("Images") or []) if shared else None
        return ImageTable(tuple(image_rows(imgs, df)), digests=digests)

    def disk_usage(self) -> DiskUsage:
        with self._errors():
            return disk_usage_from(self.api.df())

    def image(self, ref: str) -> dict[str, Any]:
        """The engine's inspect data for ``ref`` (raises ImageNotFound)."""
        ref = own(ref)
        if not is_image_id(ref):
            parse(ref)
        with self._errors(ref=ref):
            return dict(self.api.inspect_image(ref))

    def remove(self, *refs: str, force: bool = False) -> RemovalReport:
        """``docker image rm`` each ref; the report says what went and why anything stayed."""
        report = RemovalReport()
        for ref in refs:
            try:
                info = self.image(ref)
            except errors.LabError as e:
                report.errors.append(t("rm.error", ref=ref, why=str(e)))
                continue
            chain = chain_ids(info.get("RootFS", {}).get("Layers", []))
            try:
                with self._errors(ref=ref):
                    out = self.api.remove_image(ref, force=force)
            except errors.Conflict as e:
                who = e.kwargs.get("container", "?")
                report.kept.append(Kept(ref, t("rm.kept.container", ref=ref, container=who)
                                        if e.key == "image.in_use" else str(e)))
                continue
            except errors.LabError as e:
                text = str(e)
                key = "rm.kept.child" if "dependent child" in text or "has dependent" in text else None
                report.kept.append(Kept(ref, t(key, ref=ref)) if key else Kept(ref, text))
                continue
            report.untagged += [o["Untagged"] for o in out if "Untagged" in o]
            deleted = [o["Deleted"] for o in out if "Deleted" in o]
            report.deleted += deleted
            if info["Id"] not in deleted:
                tags = [tg for tg in self.image(info["Id"]).get("RepoTags") or []]
                report.kept.append(Kept(info["Id"], t("rm.kept.tag", image=short_id(info["Id"]),
                                                      tags=", ".join(tags) or "<none>")))
            else:
                report.kept += RemovalReport.layer_reasons(chain, self._chains())
        return report

    def _chains(self) -> dict[str, list[str]]:
        out = {}
        with self._errors():
            for img in self.api.images(all=True):
                try:
                    info = self.api.inspect_image(img["Id"])
                except docker.errors.ImageNotFound:  # removed by someone else meanwhile
                    continue
                name = (img.get("RepoTags") or [None])[0] or short_id(img["Id"])
                out[name] = chain_ids(info.get("RootFS", {}).get("Layers", []))
        return out

    # -- containers ---------------------------------------------------------------------------
    def run(self, image: str, command: str | list[str] | None = None, name: str | None = None,
            detach: bool = True, ports: dict[str, Any] | None = None, remove: bool = False,
            **kwargs: Any) -> Any:
        """``docker run``; returns the container (``detach=False``: its output, as text)."""
        image, name = own(image), (own(name) if name else name)
        parse(image) if not is_image_id(image) else None
        labels = {**kwargs.pop("labels", {}), **self.labels}
        with self._errors(ref=image, name=name or ""):
            try:
                self.api.inspect_image(image)
            except docker.errors.ImageNotFound:
                self.pull(image, progress=False)
            result = self.client.containers.run(image, command, name=name, detach=detach, ports=ports,
                                                remove=remove, labels=labels, **kwargs)
        if isinstance(result, bytes):
            return result.decode(errors="replace")
        return result

    def container(self, name: str) -> Any:
        name = own(name)
        with self._errors(name=name):
            try:
                return self.client.containers.get(name)
            except docker.errors.NotFound as e:
                raise errors.ContainerNotFound("container.notfound", name=name) from e

    def exec(self, container: Any, cmd: str | list[str], **kwargs: Any) -> _c.ExecResult:
        c = self.container(container) if isinstance(container, str) else container
        with self._errors(name=getattr(c, "name", "")):
            code, out = c.exec_run(cmd, **kwargs)
        return _c.ExecResult(int(code or 0), (out or b"").decode(errors="replace"))

    def diff(self, container: Any) -> _c.DiffTree:
        c = self.container(container) if isinstance(container, str) else container
        with self._errors(name=c.name):
            return _c.diff_tree(c.name, self.api.diff(c.id))

    def commit(self, container: Any, ref: str, author: str | None = None, message: str | None = None,
               changes: list[str] | None = None) -> Any:
        c = self.container(container) if isinstance(container, str) else container
        ref = own(ref)
        r = parse(ref)
        with self._errors(ref=ref, name=c.name):
            return c.commit(repository=r.repository, tag=r.tag or "latest", author=author, message=message,
                            changes=[*(changes or []), f"LABEL {next(iter(self.labels))}={self.session}"])

    def history(self, ref: str) -> _c.HistoryTable:
        ref = own(ref)
        if not is_image_id(ref):
            parse(ref)
        with self._errors(ref=ref):
            return _c.history_table(ref, self.api.history(ref))

    # -- session ------------------------------------------------------------------------------
    def cleanup(self) -> CleanupReport:
        """Remove exactly what this session labelled: containers, images, volumes, networks."""
        report = CleanupReport()
        flt = {"label": f"{SESSION_LABEL}={self.session}"}
        with self._errors():
            for c in self.client.containers.list(all=True, filters=flt):
                c.remove(force=True, v=True)
                report.containers.append(c.name)
            for img in self.api.images(filters=flt):
                for tag in img.get("RepoTags") or [img["Id"]]:
                    try:
                        self.api.remove_image(tag, force=True)
                        report.images.append(tag)
                    except docker.errors.NotFound:
                        pass
            for v in self.client.volumes.list(filters=flt):
                v.remove(force=True)
                report.volumes.append(v.name)
            for n in self.client.networks.list(filters=flt):
                n.remove()
                report.networks.append(n.name)
        return report

    def close(self) -> None:
        self.client.close()


def _answers(addr: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{addr}/v2/", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def connect(engine: str | None = None, session: str | None = None) -> Lab:
    """The lab's engine (from the lab's state file or ``DOCKER_HOST``); raises EngineUnavailable."""
    lab = Lab(lab_config(engine), session=session)
    lab.ping()
    return lab
