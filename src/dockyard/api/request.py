"""The request object handed to route handlers, and the hijacked connection for attach/exec."""

from __future__ import annotations

import io
import json
import select
import socket
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs

from dockyard.api.bodycheck import BodyRejected, RequestLimits
from dockyard.api.bodycheck import parse as parse_body
from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.api.context import Services

_TRUE = {"1", "true", "True", "TRUE", "yes"}


class Hijacked:
    """The raw connection after `101 UPGRADED`: bytes both ways, framing is the caller's business."""

    def __init__(self, sock: socket.socket, rfile: IO[bytes]) -> None:
        self.sock = sock
        self._rfile = rfile

    def recv(self, n: int = 65536) -> bytes:
        """Read what the client sends (leftover buffered bytes first); b'' on EOF."""
        try:
            return self._rfile.read1(n)  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return b""

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Request:
    def __init__(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Any,
        rfile: IO[bytes],
        sock: socket.socket,
        services: Services,
        api_version: str,
        limits: RequestLimits | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query: dict[str, list[str]] = parse_qs(query_string, keep_blank_values=True)
        self.headers = headers
        self.params: dict[str, str] = {}
        self.services = services
        self.api_version = api_version
        self.limits = limits or RequestLimits()
        self._rfile = rfile
        self._sock = sock
        self._body: bytes | None = None
        self._stream: IO[bytes] | None = None
        self.hijacked: Hijacked | None = None
        self.wants_close = False

    # -- query helpers -------------------------------------------------
    def q(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else default

    def q_all(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def q_bool(self, name: str, default: bool = False) -> bool:
        v = self.q(name)
        if v is None:
            return default
        return v in _TRUE

    def q_int(self, name: str, default: int | None = None) -> int | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise InvalidParameter(f"invalid value for {name}: {v!r}") from None

    def q_json(self, name: str, default: Any = None) -> Any:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return json.loads(v)
        except ValueError:
            raise InvalidParameter(f"invalid JSON in query parameter {name}") from None

    def filters(self) -> dict[str, list[str]]:
        """The `filters` query parameter in both of docker's shapes ({k: [v]} and {k: {v: true}})."""
        raw = self.q_json("filters", {}) or {}
        if not isinstance(raw, dict):
            raise InvalidParameter("invalid filter")
        out: dict[str, list[str]] = {}
        for k, v in raw.items():
            if isinstance(v, dict):
                out[k] = [x for x, on in v.items() if on]
            elif isinstance(v, list):
                out[k] = [str(x) for x in v]
            else:
                out[k] = [str(v)]
        return out

    # -- body ----------------------------------------------------------
    def body_stream(self) -> IO[bytes]:
        """The request body as a file: Content-Length bounded or chunked-decoded (one reader per request)."""
        if self._stream is None:
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                self._stream = _ChunkedReader(self._rfile)  # type: ignore[assignment]
            else:
                length = int(self.headers.get("Content-Length") or 0)
                self._stream = _LimitedReader(self._rfile, length)  # type: ignore[assignment]
        assert self._stream is not None
        return self._stream

    def body(self) -> bytes:
        if self._body is None:
            self._body = self.body_stream().read()
        return self._body

    def json(self, default: Any = None) -> Any:
        """The body as JSON, within the daemon's bounds (413 past ``max-json-body``) and of the types the API's
        spec gives this route's body (400 in moby's wording otherwise; see bodycheck.py)."""
        limit = self.limits.max_json_body
        if self._body is None:
            declared = self.headers.get("Content-Length")
            if declared and declared.strip().isdigit() and int(declared) > limit:
                raise BodyRejected(413, f"request body too large: {int(declared)} bytes "
                                        f"(the limit for a JSON body is {limit})")
            self._body = self.body_stream().read(limit + 1)
            if len(self._body) > limit:
                self._body = b""
                raise BodyRejected(413, f"request body too large (the limit for a JSON body is {limit} bytes)")
        data = self._body
        if not data.strip():
            return default
        return parse_body(data, self.method, self.path, self.limits)

    def discard(self, most: int) -> bool:
        """Read and drop up to ``most`` more bytes of the body (a refused body is not kept in memory);
        True when the whole body was consumed, so the connection can serve the next request."""
        if self.hijacked is not None:
            return False
        stream = self.body_stream()
        left = most
        try:
            while left > 0:
                chunk = stream.read(min(65536, left))
                if not chunk:
                    return True
                left -= len(chunk)
            return not stream.read(1)
        except (OSError, ValueError):
            return False

    def drain(self) -> None:
        """Consume what is left of the body so the connection can serve the next request."""
        if self.hijacked is not None:
            return
        try:
            stream = self.body_stream()
            while stream.read(65536):
                pass
        except (OSError, ValueError):
            self.wants_close = True
        if self._body is None:
            self._body = b""

    def body_handed_off(self) -> None:
        """The handler passed ``body_stream()`` to a job that reads it to the end (load, import): the server
        must not wait for the body again, and ``body()`` answers empty."""
        self._body = b""

    # -- the connection ------------------------------------------------
    def peer_alive(self) -> bool:
        """False once the client hung up (a handler that waits, like ``wait``, then stops early)."""
        try:
            r, _, _ = select.select([self._sock], [], [], 0)
            if not r:
                return True
            return bool(self._sock.recv(1, socket.MSG_PEEK))
        except (OSError, ValueError):
            return False

    # -- hijack --------------------------------------------------------
    def hijack(self, content_type: str = "application/vnd.docker.raw-stream") -> Hijacked:
        """Answer 101 UPGRADED (or 200 for old clients) and hand the raw connection to the handler."""
        upgrade = (self.headers.get("Upgrade") or "").lower() in ("tcp", "h2c")
        if upgrade:
            head = (
                "HTTP/1.1 101 UPGRADED\r\n"
                f"Content-Type: {content_type}\r\n"
                "Connection: Upgrade\r\n"
                "Upgrade: tcp\r\n\r\n"
            )
        else:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n"
        self._sock.sendall(head.encode())
        self.hijacked = Hijacked(self._sock, self._rfile)
        self.wants_close = True
        return self.hijacked


class _LimitedReader:
    def __init__(self, f: IO[bytes], n: int) -> None:
        self._f = f
        self._left = n

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if n < 0 or n > self._left:
            n = self._left
        data = self._f.read(n)
        self._left -= len(data)
        if not data:
            self._left = 0
        return data

    def readinto(self, b: Any) -> int:
        """At most one socket read straight into ``b`` (no intermediate copy): what has arrived, up to ``b``'s
        size, so a consumer works on the body while the rest is still in flight."""
        if self._left <= 0:
            return 0
        view = memoryview(b)
        if len(view) > self._left:
            view = view[:self._left]
        n = _readinto1(self._f, view)
        if not n:
            self._left = 0
        self._left -= n
        return n

    def readable(self) -> bool:
        return True


def _readinto1(f: IO[bytes], view: memoryview) -> int:
    """One read into ``view``: the buffered socket file's ``readinto1`` (one recv at most, none when its buffer
    holds data), a plain ``readinto`` for anything else."""
    if isinstance(f, io.BufferedReader):
        return f.readinto1(view)
    return f.readinto(view)  # type: ignore[attr-defined,no-any-return]


class _ChunkedReader:
    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._left = 0
        self._done = False

    def _next_chunk(self) -> None:
        line = self._f.readline()
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while self._f.readline() not in (b"\r\n", b"\n", b""):
                pass
            self._done = True
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if 0 < n < self._left:  # inside one chunk: no accumulation
            data = self._f.read(n)
            self._left -= len(data)
            if not data:
                self._done = True
            return data
        out = bytearray()
        while not self._done and (n < 0 or len(out) < n):
            if self._left == 0:
                self._next_chunk()
                if self._done:
                    break
            want = self._left if n < 0 else min(self._left, n - len(out))
            data = self._f.read(want)
            if not data:
                self._done = True
                break
            out += data
            self._left -= len(data)
            if self._left == 0:
                self._f.readline()  # CRLF after chunk
        return bytes(out)

    def readinto(self, b: Any) -> int:
        """Fill ``b`` from as many chunks as it takes (fewer, larger reads for a consumer such as the build's
        tar reader: a context arrives in chunks of one tar record or file each); short only at the body's end.
        The bytes go from the socket file straight into ``b``."""
        view = memoryview(b).cast("B")
        total = 0
        f = self._f
        while total < len(view) and not self._done:
            if self._left == 0:
                self._next_chunk()
                if self._done:
                    break
            want = min(len(view) - total, self._left)
            n = f.readinto(view[total:total + want])  # type: ignore[attr-defined]
            if not n:
                self._done = True
                break
            total += n
            self._left -= n
            if self._left == 0:
                f.readline()  # CRLF after chunk
        return total

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:
        while True:
            b = self.read(65536)
            if not b:
                return
            yield b
