"""Image routes (and the two container routes that produce or read image data: export, commit)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dockyard.api.context import Services
from dockyard.api.errors import host_error_message
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty, Stream
from dockyard.api.router import Router
from dockyard.errors import Conflict, InvalidParameter
from dockyard.images.reference import parse_tagged

if TYPE_CHECKING:
    from dockyard.images.service import ImageService


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".") if x.isdigit())


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _error_line(err: BaseException) -> bytes:
    msg = host_error_message(err) or str(err) or type(err).__name__
    return _line({"errorDetail": {"message": msg}, "error": msg})


def _job_stream(job: Callable[[Callable[[dict[str, Any]], None]], None]) -> Iterator[bytes]:
    """Run ``job(emit)`` on a worker thread and stream each emitted message as a JSON line."""
    q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def worker() -> None:
        try:
            job(lambda msg: q.put(_line(msg)))
        except BaseException as e:  # noqa: BLE001 - reported in-band, as docker does mid-stream
            q.put(_error_line(e))
        finally:
            q.put(None)

    threading.Thread(target=worker, name="image-job", daemon=True).start()
    while True:
        item = q.get()
        if item is None:
            return
        yield item


_EMPTY_CONTAINER_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}


def _body_consumed(req: Request, stream: Any) -> None:
    """Read what is left of a body consumed through ``body_stream()`` (an error may stop early), and
    tell the server it is gone so it does not wait for it again."""
    try:
        while stream.read(1 << 20):
            pass
    except OSError:
        req.wants_close = True
    req.body_handed_off()


def _bar(done: int, total: int) -> str:
    """docker's progress bar text: ``[=====>     ]  1.05MB/2.1MB``."""
    width = 50
    filled = width * done // total if total else width
    arrow = ">" if filled < width else ""
    bar = "=" * max(0, filled - (1 if arrow else 0)) + arrow + " " * (width - filled)

    def human(n: float) -> str:
        units = ["B", "kB", "MB", "GB", "TB"]
        i = 0
        while n >= 1000 and i < len(units) - 1:
            n /= 1000.0
            i += 1
        return f"{n:.4g}{units[i]}"

    return f"[{bar}] {human(done):>8}/{human(total)}"


def _changes(req: Request) -> list[str]:
    return [c for c in req.q_all("changes") if c]


def _pause_for_commit(s: Services, container: str) -> str | None:
    """Freeze a running container while its writable layer is read (docker's ``pause=true``)."""
    c = s.containers.get(container)
    if not c.state.Running or c.state.Paused:
        return None
    try:
        s.containers.pause(c.id)
    except Conflict:
        return None  # it stopped in the meantime: nothing runs that could change the layer
    return c.id


def register(r: Router, s: Services) -> None:
    def images() -> ImageService:
        return s.images

    @r.get("/images/json")
    def list_images(req: Request) -> JSON:
        filters = req.filters()
        legacy = req.q("filter")
        if legacy:
            filters.setdefault("reference", []).append(legacy)
        out = images().list_images(all_=req.q_bool("all"), filters=filters,
                                   shared_size=req.q_bool("shared-size"))
        if _vt(req.api_version) >= (1, 44):
            for item in out:
                item.pop("VirtualSize", None)
        return JSON(out)

    @r.get("/images/get")
    def save_many(req: Request) -> Stream:
        from dockyard.images.archive import save

        names = [n for v in req.q_all("names") for n in v.split(",") if n]
        return Stream(save(images(), names), "application/x-tar")

    @r.get("/images/{name:path}/get")
    def save_one(req: Request) -> Stream:
        from dockyard.images.archive import save

        return Stream(save(images(), [req.params["name"]]), "application/x-tar")

    @r.get("/images/{name:path}/json")
    def inspect(req: Request) -> JSON:
        out = images().inspect(req.params["name"])
        if _vt(req.api_version) >= (1, 44):
            out.pop("VirtualSize", None)
        # API < 1.45 carries the config of the container an image was committed from. dockerd drops it
        # from 1.45 on, which breaks docker-compose 1.x (Debian's) on every recreate: it negotiates the
        # newest version and reads the field unconditionally. An extra field harms no client, so keep it.
        out.setdefault("Container", "")
        out.setdefault("ContainerConfig", _EMPTY_CONTAINER_CONFIG)
        return JSON(out)

    @r.get("/images/{name:path}/history")
    def history(req: Request) -> JSON:
        return JSON(images().history(req.params["name"]))

    @r.post("/images/{name:path}/tag")
    def tag(req: Request) -> Empty:
        repo = req.q("repo") or ""
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        images().tag(req.params["name"], repo, req.q("tag") or None)
        return Empty(201)

    @r.delete("/images/{name:path}")
    def remove(req: Request) -> JSON:
        return JSON(images().remove(req.params["name"], force=req.q_bool("force"),
                                    prune=not req.q_bool("noprune")))

    @r.post("/images/prune")
    def prune(req: Request) -> JSON:
        return JSON(images().prune(req.filters()))

    @r.post("/images/create")
    def create(req: Request) -> Stream:
        src = req.q("fromSrc")
        if src is None:
            from dockyard.api.routes.distribution import pull_stream

            return pull_stream(req, s)
        if src != "-":
            from dockyard.api.routes.distribution import import_url_stream

            return import_url_stream(req, s, src, _changes(req))
        repo, tag = req.q("repo") or "", req.q("tag") or ""
        if repo:
            parse_tagged(f"{repo}:{tag}" if tag else repo)  # refuse bad names before reading the body
        body = req.body_stream()
        try:
            img = images().import_tar(body, repo, tag, _changes(req), req.q("message") or "")
        finally:
            _body_consumed(req, body)
        return Stream(iter([_line({"status": img.id})]), "application/json")

    @r.post("/images/load")
    def load(req: Request) -> Stream:
        """Streamed like dockerd: 200 at once, progress and ``Loaded image`` lines, errors in-band."""
        from dockyard.images.archive import load as load_archive

        svc = images()
        quiet = req.q_bool("quiet")
        body = req.body_stream()
        req.body_handed_off()  # the job below reads it

        def job(emit: Callable[[dict[str, Any]], None]) -> None:
            def layer(short: str, done: int, total: int) -> None:
                emit({"status": "Loading layer", "progressDetail": {"current": done, "total": total},
                      "progress": _bar(done, total), "id": short})

            try:
                load_archive(svc, body, lambda msg: emit({"stream": msg + "\n"}), None if quiet else layer)
            finally:
                _body_consumed(req, body)

        return Stream(_job_stream(job), "application/json")

    @r.post("/images/bootstrap")
    def bootstrap(req: Request) -> Stream:
        from dockyard.images.bootstrap import bootstrap as build

        name = req.q("name") or ""
        if not name:
            raise InvalidParameter("name is required (busybox or debian[:suite])")
        svc = images()

        def job(emit: Callable[[dict[str, Any]], None]) -> None:
            img = build(svc, name, lambda msg: emit({"status": msg}))
            emit({"status": f"Image ID: {img.id}", "id": img.id})

        return Stream(_job_stream(job), "application/json")

    @r.post("/commit")
    def commit(req: Request) -> JSON:
        container = req.q("container") or ""
        if not container:
            raise InvalidParameter("container is required")
        cfg = req.json(None)
        paused = _pause_for_commit(s, container) if req.q_bool("pause", True) else None
        try:
            img = s.containers.commit(container, req.q("repo") or "", req.q("tag") or "", req.q("comment") or "",
                                      req.q("author") or "", _changes(req), cfg if isinstance(cfg, dict) else None)
        finally:
            if paused is not None:
                try:
                    s.containers.unpause(paused)
                except Conflict:
                    pass  # it was stopped (or killed) while paused: there is nothing to resume
        return JSON({"Id": img.id}, 201)

    @r.get("/containers/{id}/export")
    def export(req: Request) -> Stream:
        return Stream(s.containers.export(req.params["id"]), "application/x-tar")
