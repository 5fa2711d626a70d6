"""A small Engine API client over unix sockets, TCP and TLS.

It speaks just enough HTTP/1.1 by hand (no http.client, no urllib) because the CLI's
start-up time is a feature: importing this module costs only _socket/_json/os (the ``socket``
module, with its enum/selectors imports, is loaded only for TCP and TLS hosts).
One connection per request keeps the code straight: a unix connect costs microseconds.
"""

from __future__ import annotations

import _socket
import os

from dockyard.util import cjson

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator
    from typing import Any

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str, safe: str = "") -> str:
    """Percent-encode for a query string (urllib.parse would cost a few ms of imports)."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode())

OUR_API_VERSION = "1.47"
DEFAULT_HOST = "unix:///run/dockyard.sock"


class APIError(Exception):
    """The daemon answered with an error status; ``message`` is docker's wording from the body.

    ``error_for(status, message)`` picks the subclass of the status (like docker-py's ``NotFound``,
    ``Conflict`` …), so callers branch on the type; ``APIError(status, message)`` itself still works.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(APIError):
    """400: the request was wrong (flags, names, body)."""


class Unauthorized(APIError):
    """401: the daemon wants credentials."""


class Forbidden(APIError):
    """403: the daemon refuses (a predefined network …)."""


class NotFound(APIError):
    """404: no such container, image, network, volume, exec or endpoint."""


class Conflict(APIError):
    """409: the object's state forbids the request (in use, running, name taken)."""


class ServerError(APIError):
    """5xx: the daemon failed for reasons of its own."""


class NotImplementedByDaemon(ServerError):
    """501: a feature the daemon does not implement."""


class Unavailable(ServerError):
    """503: the daemon cannot serve this now."""


_ERROR_OF_STATUS: dict[int, type[APIError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    501: NotImplementedByDaemon, 503: Unavailable,
}


def error_for(status: int, message: str) -> APIError:
    """The APIError subclass of an HTTP status (any other 5xx is a ServerError, anything else an APIError)."""
    cls = _ERROR_OF_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(status, message)


class DaemonUnreachable(Exception):
    """Nothing listens at the host address (refused, missing socket)."""

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(f"Cannot connect to the dockyard daemon at {host}. Is the dockyard daemon running?")
        self.host = host
        self.reason = reason


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


def encode_query(query: dict[str, Any] | None) -> str:
    """Encode query parameters the way the daemon expects (bools as 1/0, lists repeated, None dropped)."""
    if not query:
        return ""
    parts: list[str] = []
    for key, value in query.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool):
                v = "1" if v else "0"
            elif isinstance(v, (dict,)):
                v = cjson.dumps(v, separators=(",", ":"))
            parts.append(f"{_quote(key, safe='')}={_quote(str(v), safe='')}")
    return ("?" + "&".join(parts)) if parts else ""


class _Reader:
    """Buffered reads on a socket: lines for the head, exact sizes or chunks for the body."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 1], self.buf[i + 1:]
                return line
            if not self._fill():
                line, self.buf = self.buf, b""
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_some(self) -> bytes:
        if not self.buf:
            self._fill()
        data, self.buf = self.buf, b""
        return data

    def pieces(self, n: int) -> Iterator[bytes]:
        """Up to ``n`` bytes as they arrive (fewer when the peer closes first)."""
        while n > 0:
            if not self.buf and not self._fill():
                return
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            yield piece


class Response:
    """A response whose body is read lazily: whole (``data``/``json``) or as it arrives (``iter_raw``)."""

    def __init__(self, sock: socket.socket, reader: _Reader, status: int, headers: dict[str, str]) -> None:
        self.sock = sock
        self._reader = reader
        self.status = status
        self.headers = headers
        self._data: bytes | None = None

    def iter_raw(self) -> Iterator[bytes]:
        """Body bytes as they arrive (chunked decoding done), then the connection is closed."""
        r = self._reader
        try:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    line = r.readline()
                    if not line:
                        return
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        return
                    for piece in r.pieces(size):
                        size -= len(piece)
                        yield piece
                    if size:
                        return  # the connection ended inside a chunk
                    r.read_exact(2)
            elif "content-length" in self.headers:
                yield from r.pieces(int(self.headers["content-length"]))
            elif self.status in (204, 304):
                return
            else:
                while True:
                    piece = r.read_some()
                    if not piece:
                        return
                    yield piece
        finally:
            self.close()

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = b"".join(self.iter_raw())
        return self._data

    def json(self) -> Any:
        d = self.data
        return cjson.loads(d) if d.strip() else None

    def iter_lines(self) -> Iterator[bytes]:
        """Newline-separated records (progress and event streams)."""
        pending = b""
        for piece in self.iter_raw():
            pending += piece
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    yield line
        if pending.strip():
            yield pending

    def iter_json(self) -> Iterator[Any]:
        """JSON values, one per line; tolerates several per chunk or one split across chunks."""
        import json  # streams only: its raw_decode splits several values per chunk

        dec = json.JSONDecoder()
        pending = ""
        for line in self.iter_lines():
            pending += line.decode("utf-8", "replace")
            while pending:
                pending = pending.lstrip()
                if not pending:
                    break
                try:
                    obj, end = dec.raw_decode(pending)
                except ValueError:
                    break
                pending = pending[end:]
                yield obj

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class HijackedSocket:
    """The raw connection after the daemon upgraded it; bytes read past the HTTP head come first."""

    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self._leftover = leftover

    def recv(self, n: int = 65536) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover[:n], self._leftover[n:]
            return data
        return self.sock.recv(n)

    def pending(self) -> bool:
        return bool(self._leftover)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        """Half-close: the container sees EOF on stdin while its output still flows back."""
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def iter_multiplexed(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split docker's 8-byte framed stream into (stream, payload): 0 stdin, 1 stdout, 2 stderr."""
    from dockyard.util.stdcopy import iter_frames

    return iter_frames(chunks)


class APIClient:
    """Engine API calls against ``host`` (unix://path, tcp://h:p, or https when TLS is configured)."""

    def __init__(self, host: str | None = None, tls: bool | None = None, tls_verify: bool | None = None,
                 cert_path: str | None = None, version: str | None = None, timeout: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.host = host or os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        if tls_verify is None:
            tls_verify = bool(os.environ.get("DOCKER_TLS_VERIFY"))
        self.tls_verify = tls_verify
        self.tls = bool(tls) or tls_verify or self.host.startswith("https://")
        self.cert_path = cert_path or os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        self.timeout = timeout
        self._version = version or os.environ.get("DOCKER_API_VERSION") or None
        self._ssl_ctx: Any = None
        self.server_headers: dict[str, str] = {}
        self.headers = dict(headers or {})  # sent on every request (docker's HttpHeaders, a bearer token)

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        host = self.host
        try:
            if host.startswith("unix://"):
                us = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
                us.settimeout(self.timeout)
                try:
                    us.connect(host[len("unix://"):])
                except BaseException:
                    us.close()
                    raise
                return us  # type: ignore[return-value]  # the socket.socket API this module uses
            if host.startswith(("tcp://", "http://", "https://")):
                import socket

                addr = host.split("://", 1)[1].rstrip("/")
                h, _, p = addr.rpartition(":")
                if not h:
                    h, p = addr, "2376" if self.tls else "2375"
                s = socket.create_connection((h.strip("[]"), int(p)), timeout=self.timeout)
                if self.tls:
                    return self._wrap_tls(s, h.strip("[]"))
                return s
        except (ConnectionRefusedError, FileNotFoundError) as e:
            raise DaemonUnreachable(host, str(e)) from e
        except PermissionError as e:
            raise DaemonUnreachable(host, str(e)) from e
        raise ValueError(f"unable to parse docker host `{host}`")

    def _wrap_tls(self, s: socket.socket, server_name: str) -> socket.socket:
        import ssl

        if self._ssl_ctx is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            ca = os.path.join(self.cert_path, "ca.pem")
            if self.tls_verify:
                if os.path.exists(ca):
                    ctx.load_verify_locations(ca)
            else:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            cert, key = os.path.join(self.cert_path, "cert.pem"), os.path.join(self.cert_path, "key.pem")
            if os.path.exists(cert) and os.path.exists(key):
                ctx.load_cert_chain(cert, key)
            self._ssl_ctx = ctx
        return self._ssl_ctx.wrap_socket(s, server_hostname=server_name)  # type: ignore[no-any-return]

    # -- version negotiation -----------------------------------------------------------------------
    @property
    def version(self) -> str:
        """min(ours, the server's) as reported by /_ping; ours when the ping says nothing."""
        if self._version is None:
            resp = self._raw("GET", "/_ping", versioned=False)
            resp.data  # noqa: B018 - drain
            self.server_headers = resp.headers
            server = resp.headers.get("api-version", OUR_API_VERSION)
            self._version = min(OUR_API_VERSION, server, key=_vtuple)
        return self._version

    # -- raw request -----------------------------------------------------------------------------
    def _send(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
              headers: dict[str, str] | None = None, versioned: bool = True,
              upgrade: bool = False) -> socket.socket:
        """Connect and send one request; the answer is read by ``_read_response``."""
        url = (f"/v{self.version}{path}" if versioned else path) + encode_query(query)
        hdrs = {"Host": "api", "User-Agent": "dockyard-cli"}
        payload: bytes | None = None
        stream_body: Any = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                payload = bytes(body)
            elif hasattr(body, "read"):
                stream_body = body
            else:
                payload = cjson.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
        if upgrade:
            hdrs["Connection"] = "Upgrade"
            hdrs["Upgrade"] = "tcp"
        else:
            hdrs["Connection"] = "close"
        if self.headers:
            hdrs.update(self.headers)
        if headers:
            hdrs.update(headers)
        if payload is not None:
            hdrs["Content-Length"] = str(len(payload))
        elif stream_body is not None:
            hdrs["Transfer-Encoding"] = "chunked"
        elif method in ("POST", "PUT"):
            hdrs["Content-Length"] = "0"
        head = f"{method} {url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        sock = self._connect()
        try:
            sock.sendall(head.encode() + (payload or b""))
            if stream_body is not None:
                while True:
                    piece = stream_body.read(65536)
                    if not piece:
                        break
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def _read_response(sock: socket.socket) -> Response:
        """Read the status line and headers; the body stays on the socket for the Response."""
        try:
            reader = _Reader(sock)
            status_line = reader.readline()
            if not status_line:
                raise ServerError(500, "the daemon closed the connection without answering")
            status = int(status_line.split(b" ", 2)[1])
            rheaders: dict[str, str] = {}
            while True:
                line = reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                rheaders[k.strip().lower()] = v.strip()
        except BaseException:
            sock.close()
            raise
        return Response(sock, reader, status, rheaders)

    def _raw(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             headers: dict[str, str] | None = None, versioned: bool = True,
             upgrade: bool = False) -> Response:
        return self._read_response(self._send(method, path, query, body, headers, versioned, upgrade))

    def begin(self, method: str, path: str, query: dict[str, Any] | None = None,
              body: Any = None) -> PendingResponse:
        """Send a request now, read its answer later (``wait`` registered before ``start``, as docker does)."""
        return PendingResponse(self._send(method, path, query, body))

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> Response:
        """Send a request; raise APIError for 4xx/5xx answers."""
        resp = self._raw(method, path, query, body, headers)
        if resp.status >= 400:
            raise _error_from(resp)
        return resp

    # -- conveniences ----------------------------------------------------------------------------
    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query).json()

    def post(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        return self.request("POST", path, query, body).json()

    def put(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        return self.request("PUT", path, query, body).json()

    def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, query).json()

    def stream_json(self, method: str, path: str, query: dict[str, Any] | None = None,
                    body: Any = None) -> Iterator[Any]:
        """Chunked JSON lines (events, stats, progress), yielded as they arrive."""
        return self.request(method, path, query, body).iter_json()

    def stream_raw(self, method: str, path: str, query: dict[str, Any] | None = None) -> Response:
        return self.request(method, path, query)

    def hijack(self, method: str, path: str, query: dict[str, Any] | None = None,
               body: Any = None) -> HijackedSocket:
        """POST with ``Connection: Upgrade``; on 101/200 the socket carries raw bytes both ways."""
        resp = self._raw(method, path, query, body, upgrade=True)
        if resp.status >= 400:
            raise _error_from(resp)
        if resp.status not in (101, 200):
            resp.close()
            raise error_for(resp.status, f"unexpected status {resp.status} for {path}")
        leftover = resp._reader.buf
        return HijackedSocket(resp.sock, leftover)

    def ping(self) -> dict[str, str]:
        resp = self._raw("GET", "/_ping", versioned=False)
        resp.data  # noqa: B018
        return resp.headers


class PendingResponse:
    """A request already sent whose answer has not been read yet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def result(self) -> Any:
        """Block for the answer; its JSON body, or APIError."""
        resp = APIClient._read_response(self.sock)
        if resp.status >= 400:
            raise _error_from(resp)
        return resp.json()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _error_from(resp: Response) -> APIError:
    raw = resp.data
    message = raw.decode("utf-8", "replace").strip()
    try:
        obj = cjson.loads(raw)
        if isinstance(obj, dict) and "message" in obj:
            message = str(obj["message"])
    except ValueError:
        pass
    return error_for(resp.status, message or f"status {resp.status}")
