"""The registry's HTTP endpoints (OCI distribution spec v1.1, plus docker's /v1/search) as a WSGI app.

Blobs are answered with the server's file wrapper, so gunicorn sends them with sendfile(2) (plain HTTP) or in
1 MiB reads (TLS); uploads are read from the socket in 1 MiB pieces and hashed as they arrive. Nothing holds a
blob in memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

from . import protocol
from .auth import Authenticator, Scope
from .errors import RegistryError
from .ratelimit import RateLimiter
from .store import RegistryStore

log = logging.getLogger("dockyard.registry")

_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?:manifests/(?P<ref>[^/]+)|blobs/uploads/(?P<upload>[^/]*)"
                    r"|blobs/(?P<digest>[^/]+)|(?P<tags>tags/list)|referrers/(?P<subject>[^/]+))$")
_WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 413: "Payload Too Large", 416: "Range Not Satisfiable",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class PullThrough(Protocol):
    """A remote registry this one caches (proxy.remoteurl): fetches what the store lacks into it."""

    def fetch_manifest(self, name: str, reference: str) -> bool: ...
    def fetch_blob(self, name: str, digest: str) -> Iterator[bytes] | None: ...


@dataclass
class Settings:
    read_only: bool = False
    delete_enabled: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list)
    upload_purge_age: float = 24 * 3600.0
    upload_purge_interval: float = 3600.0
    token_path: str | None = None  # where the built-in token endpoint answers


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                 stream: Any = None) -> None:
        self.status = status
        self.headers = headers or []
        self.body = body
        self.stream = stream


def _json(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(obj).encode()
    return Response(status, [("Content-Type", "application/json"), *(headers or [])], body)


class _Req:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]
        self.path: str = environ.get("PATH_INFO", "")
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.input: IO[bytes] = environ["wsgi.input"]

    def q(self, name: str) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else None

    def header(self, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        return self.environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key)

    def content_length(self) -> int | None:
        v = self.header("Content-Length")
        return int(v) if v and v.isdigit() else None


def _paginate(items: list[str], req: _Req, base: str) -> tuple[list[str], list[tuple[str, str]]]:
    last = req.q("last")
    if last:
        items = [i for i in items if i > last]
    n_s = req.q("n")
    if n_s is None or n_s == "":
        return items, []
    try:
        n = int(n_s)
    except ValueError:
        raise RegistryError("UNSUPPORTED", "the n parameter must be an integer", {"n": n_s}) from None
    if n < 0:
        raise RegistryError("UNSUPPORTED", "the n parameter must not be negative", {"n": n})
    page = items[:n]
    if n and len(items) > n:
        return page, [("Link", f'<{base}?last={quote(page[-1], safe="")}&n={n}>; rel="next"')]
    return page, []


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range, None for the whole blob; RANGE_INVALID if unsatisfiable."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        start, end = max(size - int(m.group(2)), 0), size - 1
    end = min(end, size - 1)
    if start > end or start >= size:
        raise RegistryError("RANGE_INVALID", "requested range not satisfiable", {"size": size})
    return start, end


class RegistryApp:
    def __init__(self, store: RegistryStore, auth: Authenticator, limiter: RateLimiter, settings: Settings,
                 proxy: PullThrough | None = None) -> None:
        self.store = store
        self.auth = auth
        self.limiter = limiter
        self.settings = settings
        self.proxy = proxy
        self._purger: threading.Thread | None = None
        self._purger_pid = -1

    # -- WSGI -------------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self._purger_pid != os.getpid():
            self._start_purger()
        req = _Req(environ)
        try:
            wait = self.limiter.allow(environ.get("REMOTE_ADDR", ""))
            if wait:
                raise RegistryError("TOOMANYREQUESTS", "too many requests",
                                    headers=[("Retry-After", str(max(1, int(wait + 0.999))))])
            resp = self._dispatch(req)
        except RegistryError as e:
            resp = Response(e.status, [("Content-Type", "application/json; charset=utf-8"), *e.headers],
                            e.body() if req.method != "HEAD" else b"")
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            err = RegistryError("UNAVAILABLE", "internal server error")
            resp = Response(500, [("Content-Type", "application/json; charset=utf-8")], err.body())
        headers = [("Docker-Distribution-API-Version", "registry/2.0"), *self.settings.headers, *resp.headers]
        if resp.stream is None and not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(len(resp.body))))
        start_response(f"{resp.status} {_REASONS.get(resp.status, 'Unknown')}", headers)
        if resp.stream is not None:
            if isinstance(resp.stream, tuple):
                f, length = resp.stream
                wrapper = environ.get("wsgi.file_wrapper")
                return wrapper(f, 1 << 20) if wrapper and length else _read_file(f, length)
            return resp.stream  # type: ignore[no-any-return]
        return [resp.body] if resp.body and req.method != "HEAD" else []

    def _start_purger(self) -> None:
        self._purger_pid = os.getpid()

        def loop() -> None:
            while True:
                try:
                    gone = self.store.purge_uploads(self.settings.upload_purge_age)
                    if gone:
                        log.info("purged %d unfinished uploads", len(gone))
                except OSError:
                    log.exception("purging uploads")
                time.sleep(self.settings.upload_purge_interval)

        self._purger = threading.Thread(target=loop, name="upload-purge", daemon=True)
        self._purger.start()

    # -- routing ----------------------------------------------------------------------------------------
    def _authorize(self, req: _Req, scope: Scope | None) -> str:
        if not self.auth.enabled:
            return ""
        return self.auth.authorize(req.header("Authorization"), scope)

    def _dispatch(self, req: _Req) -> Response:
        path, m = req.path, req.method
        if self.settings.token_path and path == self.settings.token_path and self.auth.token is not None:
            if m == "POST":  # OAuth2 password grant (docker's token spec, "oauth")
                form = parse_qs(req.input.read(1 << 16).decode(errors="replace"))
                if form.get("grant_type", [""])[0] != "password":
                    return _json({"error": "unsupported_grant_type"}, 400)
                creds = (form.get("username", [""])[0], form.get("password", [""])[0])
                tok = self.auth.issue_for(creds, form.get("service", [""])[0], form.get("scope", []))
                return _json({**tok, "scope": " ".join(form.get("scope", []))})
            if m != "GET":
                raise RegistryError("UNSUPPORTED", "the token endpoint answers GET and POST")
            tok = self.auth.issue(req.header("Authorization"), req.q("service") or "", req.query.get("scope", []))
            return _json(tok)
        if path in ("/v2", "/v2/"):
            self._authorize(req, None)
            return _json({})
        if path == "/v2/_catalog":
            self._authorize(req, Scope("registry", "catalog", ("*",)))
            repos, link = _paginate(self.store.repositories(), req, "/v2/_catalog")
            return _json({"repositories": repos}, headers=link)
        if path == "/v1/search":
            self._authorize(req, None)
            return self._search(req)
        if not path.startswith("/v2/"):
            raise RegistryError("NAME_UNKNOWN", "page not found")
        r = _ROUTE.match(path)
        if r is None:
            raise RegistryError("NAME_INVALID", "invalid repository name", {"path": path})
        name = r.group("name")
        if not protocol.valid_name(name):
            raise RegistryError("NAME_INVALID", "invalid repository name", {"name": name})
        action = "pull" if m in ("GET", "HEAD") else "delete" if m == "DELETE" else "push"
        actions = ("pull", "push") if action == "push" else (action,)
        self._authorize(req, Scope("repository", name, actions))
        if m in _WRITES and (self.settings.read_only or self.proxy is not None):
            raise RegistryError("UNSUPPORTED", "the registry is read-only" if self.settings.read_only
                                else "a pull-through cache takes no pushes")
        if m == "DELETE" and not self.settings.delete_enabled and r.group("upload") is None:
            raise RegistryError("UNSUPPORTED", "the operation is unsupported (deletes are disabled)")
        if r.group("ref") is not None:
            return self._manifest(req, name, r.group("ref"))
        if r.group("upload") is not None:
            return self._upload(req, name, r.group("upload"))
        if r.group("digest") is not None:
            return self._blob(req, name, r.group("digest"))
        if r.group("tags") is not None:
            if m != "GET":
                raise RegistryError("UNSUPPORTED", "method not allowed")
            if not self.store.repo_exists(name):
                raise RegistryError("NAME_UNKNOWN", "repository name not known to registry", {"name": name})
            tags, link = _paginate(self.store.tags(name), req, f"/v2/{name}/tags/list")
            return _json({"name": name, "tags": tags}, headers=link)
        if m != "GET":
            raise RegistryError("UNSUPPORTED", "method not allowed")
        return self._referrers(req, name, r.group("subject"))

    # -- manifests --------------------------------------------------------------------------------------
    def _manifest(self, req: _Req, name: str, ref: str) -> Response:
        m = req.method
        if m in ("GET", "HEAD"):
            if self.proxy is not None and not protocol.is_digest(ref):
                self.proxy.fetch_manifest(name, ref)  # a tag may have moved upstream; else the cached one
            try:
                digest, media_type = self.store.resolve(name, ref)
            except RegistryError as e:
                if (self.proxy is None or e.code != "MANIFEST_UNKNOWN" or not protocol.is_digest(ref)
                        or not self.proxy.fetch_manifest(name, ref)):
                    raise
                digest, media_type = self.store.resolve(name, ref)
            accepted = _accepted(req.header("Accept"))
            _check_accept(accepted, media_type)
            if (accepted is not None and media_type == protocol.DOCKER_MANIFEST_LIST and not protocol.is_digest(ref)
                    and protocol.DOCKER_MANIFEST_LIST not in accepted):
                digest, media_type = self._default_platform(name, digest, accepted)
            path = self.store.manifest_path(digest)
            with open(path, "rb") as f:
                body = f.read() if m == "GET" else b""
            size = len(body) if m == "GET" else os.path.getsize(path)
            return Response(200, [("Content-Type", media_type), ("Docker-Content-Digest", digest),
                                  ("ETag", f'"{digest}"'), ("Content-Length", str(size))], body)
        if m == "PUT":
            body = req.input.read(protocol.MANIFEST_MAX + 1)
            if len(body) > protocol.MANIFEST_MAX:
                _drain(req.input, 16 * protocol.MANIFEST_MAX)  # so the client gets to read the answer
                raise RegistryError("PAYLOAD_TOO_LARGE", "manifest too big", {"limit": protocol.MANIFEST_MAX})
            digest, subject = self.store.put_manifest(name, ref, req.header("Content-Type") or "", body)
            headers = [("Location", f"/v2/{name}/manifests/{digest}"), ("Docker-Content-Digest", digest)]
            if subject:
                headers.append(("OCI-Subject", subject))
            return Response(201, headers)
        if m == "DELETE":
            self.store.delete_manifest(name, ref)
            return Response(202)
        raise RegistryError("UNSUPPORTED", "method not allowed")

    def _default_platform(self, name: str, list_digest: str, accepted: frozenset[str]) -> tuple[str, str]:
        """A docker manifest list asked for by tag by a client that does not take lists: as distribution does,
        the linux/amd64 image it lists is served instead (MANIFEST_UNKNOWN when it lists none), unless that is
        a docker schema 2 manifest the client does not take either (MANIFEST_INVALID)."""
        with open(self.store.manifest_path(list_digest), "rb") as f:
            try:
                doc = json.load(f)
            except ValueError:
                doc = {}
        child = next((m.get("digest") for m in doc.get("manifests") or [] if isinstance(m, dict)
                      and isinstance(m.get("platform"), dict) and m["platform"].get("architecture") == "amd64"
                      and m["platform"].get("os") == "linux"), None)
        if not isinstance(child, str):
            raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown")
        digest, media_type = self.store.resolve(name, child)
        if media_type == protocol.DOCKER_MANIFEST and protocol.DOCKER_MANIFEST not in accepted:
            raise RegistryError("MANIFEST_INVALID", "Schema 2 manifest not supported by client")
        return digest, media_type

    # -- blobs ------------------------------------------------------------------------------------------
    def _blob(self, req: _Req, name: str, digest: str) -> Response:
        m = req.method
        if m == "DELETE":
            self.store.unlink_blob(name, digest)
            return Response(202, [("Docker-Content-Digest", digest)])
        if m not in ("GET", "HEAD"):
            raise RegistryError("UNSUPPORTED", "method not allowed")
        try:
            if m == "HEAD":  # a pushing client asks before it skips an upload: mark the blob used, against gc
                with self.store.gc_lock():
                    path = self.store.blob_path(name, digest, touch=True)
            else:
                path = self.store.blob_path(name, digest)
        except RegistryError as e:
            if self.proxy is None or e.code != "BLOB_UNKNOWN" or not protocol.DIGEST_RE.match(digest):
                raise
            stream = self.proxy.fetch_blob(name, digest)
            if stream is None:
                raise
            if m == "HEAD":
                for _ in stream:
                    pass
                path = self.store.blob_path(name, digest)
            else:
                return Response(200, [("Content-Type", "application/octet-stream"),
                                      ("Docker-Content-Digest", digest)], stream=stream)
        f = open(path, "rb")  # noqa: SIM115 - closed by the server once sent
        try:
            size = os.fstat(f.fileno()).st_size
            headers = [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest),
                       ("ETag", f'"{digest}"'), ("Accept-Ranges", "bytes"),
                       ("Cache-Control", "max-age=31536000")]
            rng = _byte_range(req.header("Range"), size) if m == "GET" else None
            if m == "HEAD":
                f.close()
                return Response(200, [*headers, ("Content-Length", str(size))])
            if rng is None:
                return Response(200, [*headers, ("Content-Length", str(size))], stream=(f, size))
            start, end = rng
            f.seek(start)
            return Response(206, [*headers, ("Content-Length", str(end - start + 1)),
                                  ("Content-Range", f"bytes {start}-{end}/{size}")], stream=(f, end - start + 1))
        except BaseException:
            f.close()
            raise

    # -- uploads ----------------------------------------------------------------------------------------
    def _upload_headers(self, name: str, upload_id: str, size: int) -> list[tuple[str, str]]:
        return [("Location", f"/v2/{name}/blobs/uploads/{upload_id}"), ("Docker-Upload-UUID", upload_id),
                ("Range", f"0-{max(size - 1, 0)}")]

    def _upload(self, req: _Req, name: str, upload_id: str) -> Response:
        m = req.method
        if not upload_id:
            if m != "POST":
                raise RegistryError("UNSUPPORTED", "method not allowed")
            mount, source = req.q("mount"), req.q("from")
            if mount and source and protocol.valid_name(source):
                allowed = True
                if self.auth.enabled:
                    try:
                        self.auth.authorize(req.header("Authorization"), Scope("repository", source, ("pull",)))
                    except RegistryError:
                        allowed = False
                if allowed and self.store.mount_blob(name, source, mount):
                    return Response(201, [("Location", f"/v2/{name}/blobs/{mount}"),
                                          ("Docker-Content-Digest", mount)])
            digest = req.q("digest")
            if digest:
                self.store.put_blob(name, digest, req.input)
                return Response(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])
            upload_id = self.store.start_upload(name)
            return Response(202, self._upload_headers(name, upload_id, 0))
        if m == "GET":
            size = self.store.upload_size(name, upload_id)
            return Response(204, self._upload_headers(name, upload_id, size))
        if m == "PATCH":
            start = None
            cr = req.header("Content-Range")
            length = req.content_length()
            if cr:
                mr = re.fullmatch(r"\s*(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?\s*", cr)
                if mr is None:
                    raise RegistryError("RANGE_INVALID", "invalid content range", {"Content-Range": cr})
                start = int(mr.group(1))
                if length is not None and int(mr.group(2)) - start + 1 != length:
                    raise RegistryError("RANGE_INVALID", "content range does not match the length")
            size = self.store.append_upload(name, upload_id, req.input, start, length)
            return Response(202, self._upload_headers(name, upload_id, size))
        if m == "PUT":
            digest = req.q("digest")
            if not digest:
                raise RegistryError("DIGEST_INVALID", "digest parameter missing")
            self.store.finish_upload(name, upload_id, digest, req.input)
            return Response(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])
        if m == "DELETE":
            self.store.cancel_upload(name, upload_id)
            return Response(204)
        raise RegistryError("UNSUPPORTED", "method not allowed")

    # -- discovery --------------------------------------------------------------------------------------
    def _referrers(self, req: _Req, name: str, digest: str) -> Response:
        artifact = req.q("artifactType")
        descs = self.store.referrers(name, digest, artifact)
        headers = [("Content-Type", protocol.OCI_INDEX)]
        if artifact:
            headers.append(("OCI-Filters-Applied", "artifactType"))
        body = json.dumps({"schemaVersion": 2, "mediaType": protocol.OCI_INDEX, "manifests": descs}).encode()
        return Response(200, headers, body)

    def _search(self, req: _Req) -> Response:
        q = (req.q("q") or "").lower()
        try:
            n = int(req.q("n") or 25)
        except ValueError:
            n = 25
        n = max(1, min(n, 100))
        names = [r for r in self.store.repositories() if q in r.lower()]
        results = [{"name": r, "description": "", "star_count": 0, "is_official": False, "is_automated": False}
                   for r in names[:n]]
        return _json({"num_pages": 1, "num_results": len(results), "page": 1, "page_size": n, "query": q,
                      "results": results})


def _accepted(accept: str | None) -> frozenset[str] | None:
    """The media types a client's Accept lists; None when it takes anything (no Accept, or a wildcard).

    distribution treats a missing Accept and ``*/*`` like a list without the OCI types; we serve such a client
    what is stored (curl and plain HTTP clients get the manifest they asked for)."""
    if not accept:
        return None
    types = frozenset(part.split(";")[0].strip().lower() for part in accept.split(","))
    return None if "*/*" in types or "application/*" in types else types


def _check_accept(accepted: frozenset[str] | None, media_type: str) -> None:
    """distribution's rule: a client that lists the manifest types it accepts, without the OCI ones, is not sent
    an OCI manifest or index it could not read."""
    if accepted is None or media_type not in (protocol.OCI_MANIFEST, protocol.OCI_INDEX) or media_type in accepted:
        return
    if media_type == protocol.OCI_MANIFEST:
        raise RegistryError("MANIFEST_UNKNOWN", "OCI manifest found, but accept header does not support OCI manifests")
    raise RegistryError("MANIFEST_UNKNOWN", "OCI index found, but accept header does not support OCI indexes")


def _drain(f: IO[bytes], limit: int) -> None:
    while limit > 0:
        b = f.read(min(1 << 20, limit))
        if not b:
            return
        limit -= len(b)


def _read_file(f: IO[bytes], length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            b = f.read(min(1 << 20, length))
            if not b:
                break
            length -= len(b)
            yield b
    finally:
        f.close()


def token_path(realm: str) -> str:
    return urlsplit(realm).path or "/"
