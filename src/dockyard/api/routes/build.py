"""Build routes: ``POST /build`` (the classic protocol: a tar context in, JSON lines out), ``/build/prune`` and
``/build/cancel``.

As dockerd does, an error before the first message is an HTTP error (``Error response from daemon: …`` in the
CLI); once the stream has begun, errors go in-band as ``errorDetail``. A client that goes away cancels its build.
"""

from __future__ import annotations

import base64
import binascii
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from dockyard.api.context import Services
from dockyard.api.errors import host_error_message
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty, Stream
from dockyard.api.router import Router
from dockyard.build.dockerfile import ParseError
from dockyard.build.options import BuildError, BuildOptions
from dockyard.build.service import BuildService
from dockyard.errors import DockyardError, InvalidParameter
from dockyard.images.reference import ReferenceError_, parse_normalized


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _json_param(req: Request, name: str, default: Any) -> Any:
    raw = req.q(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid {name} JSON: {raw}") from None


def _size(req: Request, name: str) -> int:
    v = req.q(name)
    if not v:
        return 0
    try:
        return int(v)
    except ValueError:
        raise InvalidParameter(f"invalid {name}: {v}") from None


def _bool_value(raw: str | None, default: bool = False) -> bool:
    """dockerd's ``BoolValue``: anything but "", "0", "no", "false", "none" (any case) is true."""
    if raw is None:
        return default
    return raw.strip().lower() not in ("", "0", "no", "false", "none")


def _options(req: Request) -> BuildOptions:
    tags = [t for t in req.q_all("t") if t]
    for t in tags:
        try:
            ref = parse_normalized(t)
        except (ReferenceError_, InvalidParameter, ValueError):
            raise InvalidParameter(f"invalid reference format: repository name ({t}) must be lowercase"
                                   if t.lower() != t else "invalid reference format") from None
        if ref.digest:
            raise InvalidParameter("invalid reference format")
    buildargs = _json_param(req, "buildargs", {}) or {}
    labels = _json_param(req, "labels", {}) or {}
    cachefrom = _json_param(req, "cachefrom", []) or []
    if not isinstance(buildargs, dict) or not isinstance(labels, dict) or not isinstance(cachefrom, list):
        raise InvalidParameter("buildargs and labels must be JSON objects, cachefrom a JSON array")
    extra_hosts: list[str] = []
    for h in req.q_all("extrahosts"):
        extra_hosts += [x for x in h.split(",") if x]
    outputs = _json_param(req, "outputs", []) or []
    resources = {"Memory": _size(req, "memory"), "MemorySwap": _size(req, "memswap"),
                 "CpuShares": _size(req, "cpushares"), "CpusetCpus": req.q("cpusetcpus") or "",
                 "CpuPeriod": _size(req, "cpuperiod"), "CpuQuota": _size(req, "cpuquota"),
                 "ShmSize": _size(req, "shmsize")}
    auth: dict[str, Any] = {}
    reg = req.headers.get("X-Registry-Config")
    if reg:
        try:
            auth = json.loads(base64.urlsafe_b64decode(reg + "=" * (-len(reg) % 4)))
        except (ValueError, binascii.Error):
            auth = {}
    secrets: dict[str, bytes] = {}
    sec = req.headers.get("X-Dockyard-Build-Secrets")
    if sec:
        try:
            raw = json.loads(base64.b64decode(sec))
            secrets = {str(k): base64.b64decode(v) for k, v in raw.items()}
        except (ValueError, binascii.Error, AttributeError):
            raise InvalidParameter("invalid build secrets header") from None
    if _bool_value(req.q("squash")):
        raise InvalidParameter("squash is only supported with experimental mode")
    rm = req.q("rm")
    network = req.q("networkmode") or "default"
    return BuildOptions(
        tags=tags, dockerfile=(req.q_all("dockerfile") or [""])[0] or "Dockerfile",
        buildargs={str(k): (None if v is None else str(v)) for k, v in buildargs.items()},
        nocache=_bool_value(req.q("nocache")), pull=_bool_value(req.q("pull")), rm=_bool_value(rm, True),
        forcerm=_bool_value(req.q("forcerm")), quiet=_bool_value(req.q("q")),
        cachefrom=[str(c) for c in cachefrom], labels={str(k): str(v) for k, v in labels.items()},
        target=req.q("target") or "", network_mode=network, extra_hosts=extra_hosts, resources=resources,
        platform=req.q("platform") or "", squash=False, secrets=secrets, auth=auth,
        build_id=req.q("buildid") or "", outputs=outputs)


def _error_obj(err: BaseException) -> dict[str, Any]:
    msg = host_error_message(err) or str(err) or type(err).__name__
    detail: dict[str, Any] = {"message": msg}
    code = getattr(err, "code", 0)
    if isinstance(err, BuildError) and code:
        detail["code"] = code
    return {"errorDetail": detail, "error": msg}


def register(r: Router, s: Services) -> None:
    def builds() -> BuildService:
        return s.builds

    @r.post("/build")
    def build(req: Request) -> Stream:
        svc = builds()
        opts = _options(req)
        remote = req.q("remote") or ""
        context_dir = req.headers.get("X-Dockyard-Context") or ""
        body = req.body_stream()
        req._body = b""  # the build reads the body; the server must not wait for it again
        q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        cancel = threading.Event()
        first = threading.Event()
        failure: list[BaseException] = []

        def emit(msg: dict[str, Any]) -> None:
            q.put(_line(msg))
            first.set()

        def worker() -> None:
            try:
                svc.build(opts, emit, tar=None if (remote or context_dir) else body, context_dir=context_dir,
                          remote=remote, cancel=cancel)
            except BaseException as e:  # noqa: BLE001 - reported in-band or as the HTTP error
                if not first.is_set():
                    failure.append(e)
                else:
                    q.put(_line(_error_obj(e)))
            finally:
                try:
                    while body.read(1 << 20):
                        pass
                except (OSError, ValueError):
                    req.wants_close = True
                first.set()
                q.put(None)

        threading.Thread(target=worker, name="build", daemon=True).start()
        first.wait()
        if failure:
            err = failure[0]
            if isinstance(err, ParseError | BuildError):
                raise InvalidParameter(str(err)) from None
            if isinstance(err, DockyardError):
                raise err
            raise err

        def gen() -> Iterator[bytes]:
            try:
                while True:
                    item = q.get()
                    if item is None:
                        return
                    yield item
            finally:
                cancel.set()  # the client went away (or the build ended): stop whatever still runs

        return Stream(gen(), "application/json")

    @r.post("/build/prune")
    def prune(req: Request) -> JSON:
        keep = req.q("keep-storage") or req.q("reserved-space") or "0"
        try:
            keep_bytes = int(float(keep))
        except ValueError:
            raise InvalidParameter(f"invalid keep-storage: {keep}") from None
        return JSON(builds().prune(all_=req.q_bool("all"), keep_storage=keep_bytes, filters=req.filters()))

    @r.post("/build/cancel")
    def cancel(req: Request) -> Empty:
        builds().cancel(req.q("id") or "")
        return Empty(200)
