"""Registry routes: pull (``/images/create?fromImage``, called from the images routes), push, ``/auth``,
``/distribution/{name}/json`` and ``/images/search``.

Pull and push stream docker's progress lines; as in dockerd, an error before the first line is an HTTP error
status (404 for an unknown repository or tag), an error after it goes in-band as ``{"error", "errorDetail"}``.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dockyard.api.context import Services
from dockyard.api.errors import host_error_message
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Stream
from dockyard.api.router import Router
from dockyard.errors import InvalidParameter, NotImplementedByEngine

_DONE = object()


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def progress_stream(job: Callable[[Callable[[dict[str, Any]], None]], None]) -> Stream:
    """Run ``job(emit)`` on a worker; wait for its first message (or its error, raised here so the API
    answers with the error's status) and stream the rest."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def worker() -> None:
        try:
            job(lambda msg: q.put(msg))
        except BaseException as e:  # noqa: BLE001 - handed to the request thread
            q.put(e)
        finally:
            q.put(_DONE)

    threading.Thread(target=worker, name="registry-job", daemon=True).start()
    first = q.get()
    if isinstance(first, BaseException):
        q.get()
        raise first

    def lines() -> Iterator[bytes]:
        item = first
        while item is not _DONE:
            if isinstance(item, BaseException):
                msg = host_error_message(item) or str(item) or type(item).__name__  # a full disk in Go's words
                yield _line({"errorDetail": {"message": msg}, "error": msg})
            else:
                yield _line(item)
            item = q.get()

    return Stream(lines(), "application/json")


def _service(s: Services) -> Any:
    dist = s.distribution
    if dist is None:
        raise NotImplementedByEngine("this engine has no registry client")
    return dist


def _creds(req: Request) -> Any:
    from dockyard.distribution.auth import decode_registry_auth

    return decode_registry_auth(req.headers.get("X-Registry-Auth"))


def pull_stream(req: Request, s: Services) -> Stream:
    """``POST /images/create?fromImage=&tag=&platform=``."""
    dist = _service(s)
    from_image = req.q("fromImage") or ""
    if not from_image:
        raise InvalidParameter("fromImage or fromSrc is required")
    tag = req.q("tag") or ""
    platform = req.q("platform") or ""
    creds = _creds(req)
    return progress_stream(lambda emit: dist.pull(from_image, tag, platform, creds, emit))


def import_url_stream(req: Request, s: Services, url: str, changes: list[str]) -> Stream:
    """``POST /images/create?fromSrc=URL``: ``docker import URL``; the daemon downloads the tar itself."""
    from dockyard.images.reference import parse_tagged

    dist = _service(s)
    repo, tag = req.q("repo") or "", req.q("tag") or ""
    if repo:
        parse_tagged(f"{repo}:{tag}" if tag else repo)  # refuse bad names before downloading anything
    message = req.q("message") or ""

    def job(emit: Callable[[dict[str, Any]], None]) -> None:
        stream = dist.open_url(url, emit)
        try:
            img = s.images.import_tar(stream, repo, tag, changes, message, source=url)
        finally:
            stream.close()
        emit({"status": img.id})

    return progress_stream(job)


def register(r: Router, s: Services) -> None:
    # the pull route lives with the image routes (one /images/create serves pull and import)

    @r.post("/images/{name:path}/push")
    def push(req: Request) -> Stream:
        dist = _service(s)
        name, tag, creds = req.params["name"], req.q("tag") or "", _creds(req)
        platform = req.q("platform") or ""
        return progress_stream(lambda emit: dist.push(name, tag, creds, emit, platform))

    @r.post("/auth")
    def auth(req: Request) -> JSON:
        body = req.json(None)
        if not isinstance(body, dict):
            raise InvalidParameter("invalid auth configuration: a JSON object is required")
        return JSON(_service(s).login(body))

    @r.get("/distribution/{name:path}/json")
    def inspect(req: Request) -> JSON:
        return JSON(_service(s).inspect(req.params["name"], _creds(req)))

    @r.get("/images/search")
    def search(req: Request) -> JSON:
        term = req.q("term") or ""
        if not term:
            raise InvalidParameter("term is required")
        limit = req.q_int("limit") if req.q("limit") else 0
        return JSON(_service(s).search(term, limit or 0, req.filters(), _creds(req)))
