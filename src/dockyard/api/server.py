"""The Engine API HTTP server: a thread per connection, over a unix socket or TLS TCP.

Handlers are plain blocking functions (see docs/architecture.md for why); streaming
responses use chunked encoding flushed per chunk; attach/exec hijack the socket.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import socketserver
import ssl
import threading
import traceback
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from dockyard import API_VERSION, MIN_API_VERSION, __version__
from dockyard.api.bodycheck import BodyRejected, RequestLimits
from dockyard.api.context import Services
from dockyard.api.errors import error_message, host_error_message, http_status
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty, Raw, Stream
from dockyard.api.router import Router

log = logging.getLogger("dockyard.api")
_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


class RequestGate(Protocol):
    """Admits a request before routing, or gives the answer refusing it (access control, api/auth_hook.py)."""

    def admit(self, req: Request) -> JSON | None: ...


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"message": message}).encode() + b"\n"


class APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"Docker/{__version__} (linux)"
    sys_version = ""
    rbufsize = 1 << 16  # a streamed body (a build context, a load) arrives in fewer, larger socket reads
    server: APIServerMixin  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.client_address, *args)

    def address_string(self) -> str:
        return "unix" if isinstance(self.client_address, (str, bytes)) else str(self.client_address[0])

    def _common_headers(self) -> None:
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        """A whole answer. Head and body leave in one write (one syscall, the client wakes once), built here
        rather than in the base handler's private header buffer."""
        with_body = bool(body) and self.command != "HEAD" and status not in (204, 304)
        self.log_request(status)
        if self.request_version == "HTTP/0.9":  # no head at all
            if with_body:
                self.wfile.write(body)
            return
        phrase = self.responses.get(status, ("",))[0]
        fields = [("Server", self.version_string()), ("Date", self.date_time_string()),
                  ("Api-Version", API_VERSION), ("Docker-Experimental", "false"), ("Ostype", "linux"),
                  *(headers or {}).items()]
        if status != 304 and status != 204:
            fields += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        for k, v in fields:
            if k.lower() == "connection" and v.lower() == "close":
                self.close_connection = True
        head = f"{self.protocol_version} {status} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields)
        self.wfile.write(head.encode("latin-1", "strict") + b"\r\n" + (body if with_body else b""))

    def _send_stream(self, resp: Stream) -> None:
        self.send_response(resp.status)
        self._common_headers()
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        it = iter(resp.chunks)
        try:
            for chunk in it:
                if not chunk:
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    def _dispatch(self) -> None:
        raw_path, _, query = self.path.partition("?")
        version = API_VERSION
        m = _VERSIONED.match(raw_path)
        path = raw_path
        if m:
            version, path = m.group(1), m.group(2)
            if _vtuple(version) > _vtuple(API_VERSION):
                self._send(400, _error_body(400, f"client version {version} is too new. "
                                                 f"Maximum supported API version is {API_VERSION}"))
                return
            if _vtuple(version) < _vtuple(MIN_API_VERSION):
                self._send(400, _error_body(400, f"client version {version} is too old. Minimum supported API "
                                                 f"version is {MIN_API_VERSION}, please upgrade your client to a "
                                                 "newer version"))
                return
        limits = self.server.limits
        if sum(len(k) + len(v) + 4 for k, v in self.headers.items()) > limits.max_header_bytes:
            self.close_connection = True
            self._send(431, _error_body(431, "Request Header Fields Too Large"))
            return
        handler, params, exists = self.server.router.match(self.command, path)
        req = Request(self.command, path, query, self.headers, self.rfile, self.connection,  # type: ignore[arg-type]
                      self.server.services, version, limits)
        if self.server.gate is not None:
            refusal = self.server.gate.admit(req)
            if refusal is not None:
                req.drain()
                self._send(refusal.status, json.dumps(refusal.body).encode() + b"\n", headers=refusal.headers)
                return
        if handler is None:
            req.drain()
            if exists:
                self._send(405, _error_body(405, "method not allowed"))
            else:
                self._send(404, _error_body(404, "page not found"))
            return
        req.params = params
        try:
            resp = handler(req)
        except BodyRejected as e:
            # the rest of a refused body is read and dropped (so the client, still sending, reads the answer),
            # up to a bound past which the connection is closed instead
            if not req.discard(_DISCARD_MAX):
                self.close_connection = True
            self._send(e.status, _error_body(e.status, str(e)))
            return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        except Exception as e:  # noqa: BLE001 - an engine bug must not kill the connection thread silently
            status = http_status(e)
            if status is not None:  # a domain error: its status from the one table
                req.drain()
                if req.hijacked is not None:
                    return
                self._send(status, b"" if status == 304 else _error_body(status, error_message(e)))
                return
            host = host_error_message(e)
            if host is not None:  # the host refused (a full disk, a quota): its words, no traceback
                log.warning("handler %s %s: %s", self.command, path, e)
                message = host
            else:
                log.error("handler %s %s failed: %s", self.command, path, traceback.format_exc())
                message = str(e) or type(e).__name__
            if req.hijacked is None:
                req.drain()
                self._send(500, _error_body(500, message))
            return
        if req.hijacked is not None or resp is None:
            self.close_connection = True
            return
        if not isinstance(resp, Stream):  # a stream may still be reading the body as it answers
            req.drain()
        if req.wants_close:
            self.close_connection = True
        if isinstance(resp, JSON):
            # UTF-8 as written, like moby's encoder (no ASCII escapes, no HTML escaping)
            self._send(resp.status, json.dumps(resp.body, ensure_ascii=False).encode() + b"\n", "application/json",
                       resp.headers)
        elif isinstance(resp, Empty):
            self._send(resp.status, b"", headers=resp.headers)
        elif isinstance(resp, Raw):
            self._send(resp.status, resp.body, resp.content_type, resp.headers)
        elif isinstance(resp, Stream):
            self._send_stream(resp)
            req.drain()
        else:  # pragma: no cover - programming error
            raise TypeError(f"bad handler result {resp!r}")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        """Any other method (PATCH, OPTIONS, TRACE, …) goes to the router too, which answers 405 on a known path
        and 404 elsewhere in JSON, as dockerd does (http.server alone would answer 501 in HTML)."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


_HANDSHAKE_SECONDS = 10.0  # a TLS client that has not finished its handshake by then is dropped
_DISCARD_MAX = 256 << 20  # bytes of a refused body read and dropped before the connection is closed instead
_IDLE_WORKERS = 8  # connection threads kept waiting for the next connection
_IDLE_SECONDS = 30.0


class APIServerMixin:
    """A thread per connection, as ThreadingMixIn; a thread whose connection ended waits a while for the next
    one instead of exiting (a `run` makes five connections: a thread start each is latency and CPU)."""

    router: Router
    services: Services
    gate: RequestGate | None = None
    limits: RequestLimits = RequestLimits()
    daemon_threads = True
    allow_reuse_address = True
    _pool_lock: threading.Lock
    _idle: int
    _handoff: queue.SimpleQueue[tuple[Any, Any]]

    def process_request(self, request: Any, client_address: Any) -> None:
        if "_pool_lock" not in vars(self):  # first connection (serve_forever's thread only gets here)
            self._pool_lock, self._idle, self._handoff = threading.Lock(), 0, queue.SimpleQueue()
        with self._pool_lock:
            if self._idle:
                self._idle -= 1
                self._handoff.put((request, client_address))
                return
        threading.Thread(target=self._serve_connections, args=(request, client_address), daemon=True).start()

    def _serve_connections(self, request: Any, client_address: Any) -> None:
        while True:
            self.process_request_thread(request, client_address)  # type: ignore[attr-defined]
            with self._pool_lock:
                if self._idle >= _IDLE_WORKERS:
                    return
                self._idle += 1
            try:
                request, client_address = self._handoff.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._pool_lock:  # a connection handed over just before the timeout is still served
                    try:
                        request, client_address = self._handoff.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return
    # clients open many connections at once (the docker CLI removes each container of `rm -f a b c …` on its
    # own); a full backlog makes their non-blocking connect fail with EAGAIN ("Cannot connect to the daemon")
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal; anything else is logged with its traceback."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, exc)
        else:
            log.error("connection from %s failed:\n%s", client_address, traceback.format_exc())


class UnixAPIServer(APIServerMixin, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    def __init__(self, path: str, router: Router, services: Services, mode: int = 0o660,
                 group: int | None = None, gate: RequestGate | None = None,
                 limits: RequestLimits | None = None) -> None:
        if os.path.exists(path):
            os.unlink(path)
        self.router = router
        self.services = services
        self.gate = gate
        self.limits = limits or RequestLimits()
        socketserver.UnixStreamServer.__init__(self, path, APIHandler)
        os.chmod(path, mode)
        if group is not None:
            os.chown(path, 0, group)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)


class TLSAPIServer(APIServerMixin, socketserver.ThreadingMixIn, socketserver.TCPServer):
    """TCP with TLS; client certificates are verified against the CA unless verification is off."""

    def __init__(self, addr: tuple[str, int], router: Router, services: Services,
                 ssl_context: ssl.SSLContext | None, gate: RequestGate | None = None,
                 limits: RequestLimits | None = None) -> None:
        self.router = router
        self.services = services
        self.gate = gate
        self.limits = limits or RequestLimits()
        self.ssl_context = ssl_context
        socketserver.TCPServer.__init__(self, addr, APIHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake runs here, on the connection's own thread: a client slow to shake hands delays
        only itself, never the accept loop and every connection behind it."""
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_HANDSHAKE_SECONDS)
        tls = self.ssl_context.wrap_socket(request, server_side=True)  # takes over the socket's fd
        try:
            tls.settimeout(None)
            super().finish_request(tls, client_address)
        finally:
            self.shutdown_request(tls)


def make_tls_context(cert: str, key: str, ca: str | None, verify: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if verify:
        if not ca:
            raise ValueError("--tlsverify needs --tlscacert")
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
