"""A registry blob as a verified, resumable byte stream.

Reads hash the bytes as they pass; the read that completes the descriptor's size checks the digest and raises
:class:`DigestMismatch` on a mismatch, so a consumer unpacking the stream (the layer store) fails before it
commits anything. A connection cut mid-blob is resumed with ``Range: bytes=N-`` (a registry that ignores the
range and sends the whole blob again has the first N bytes skipped). A 401 mid-transfer (an expired token)
fetches a new token and goes on.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable

import urllib3
from urllib3.exceptions import HTTPError as URLLib3Error

from .session import DialError, RegistryError, RepoSession, Response, parse_errors
from .spec import Descriptor, DigestMismatch


class Cancelled(Exception):
    """Another part of the same pull failed: stop reading."""


class BlobStream:
    def __init__(self, session: RepoSession, desc: Descriptor, on_bytes: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None, attempts: int = 5, urls: tuple[str, ...] = ()) -> None:
        self.session = session
        self.desc = desc
        self.on_bytes = on_bytes
        self.cancel = cancel or threading.Event()
        self.attempts = attempts
        self.urls = urls
        self.offset = 0
        self.sha = hashlib.sha256()
        self.verified = False
        self.resumes = 0
        self.failures = 0
        self._closed = False
        self._eof = False
        self._resp: Response | urllib3.BaseHTTPResponse | None = None
        self._skip = 0

    # -- opening ----------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Range": f"bytes={self.offset}-"} if self.offset else {}

    def _open_registry(self) -> Response:
        path = f"/v2/{self.session.repo}/blobs/{self.desc.digest}"
        for _ in range(3):
            resp = self.session.request("GET", path, self._headers())
            if resp.status in (301, 302, 303, 307, 308):
                loc = resp.headers.get("location", "")
                resp.read_all()
                return self._open_url(urllib.parse.urljoin(self.session.url(path), loc), redirected=True)
            if resp.status == 401:  # the token expired between two requests
                resp.read_all()
                self.session.refresh_auth()
                continue
            return self._check(resp)
        raise RegistryError("UNAUTHORIZED", "authentication required", 401)

    def _open_url(self, url: str, redirected: bool = False) -> Response:
        try:
            raw = urllib3.request("GET", url, headers=self._headers(), preload_content=False, redirect=True,
                                  retries=urllib3.Retry(total=0, redirect=5), decode_content=False,
                                  timeout=urllib3.Timeout(connect=10.0, read=120.0))
        except (URLLib3Error, OSError) as e:
            from .session import _go_dial_text

            host = urllib.parse.urlsplit(url).netloc
            raise DialError(_go_dial_text("GET", url, host, e)) from e
        return self._check(Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw))

    def _check(self, resp: Response) -> Response:
        if resp.status == 206 and self.offset:
            self._skip = 0
        elif resp.status == 200:
            self._skip = self.offset  # the range was ignored: skip what we already have
        else:
            body = resp.read_all()
            raise parse_errors(resp.status, body, resp.headers.get("www-authenticate", ""))
        return resp

    def _open(self) -> None:
        if self.urls:
            errors: list[str] = []
            for url in self.urls:
                try:
                    self._resp = self._open_url(url)
                    return
                except (DialError, RegistryError) as e:
                    errors.append(str(e))
            raise DialError(f"failed to fetch foreign layer {self.desc.digest} from any of its URLs: "
                            + "; ".join(errors))
        self._resp = self._open_registry()

    # -- reading ----------------------------------------------------------------------------------------
    def start_prefetch(self, depth: int = 8, chunk: int = 1 << 20) -> None:
        """Read ahead on a thread of its own (network, resume, sha256) while the consumer unpacks: hashing and
        inflating release the GIL, so the two overlap on two cores. At most ``depth`` chunks wait."""
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._pending = b""
        self._pending_off = 0
        self._prefetching = True
        threading.Thread(target=self._pump, args=(chunk,), name="blob-prefetch", daemon=True).start()

    def _pump(self, chunk: int) -> None:
        while True:
            try:
                item: bytes | BaseException = self._fetch(chunk)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                item = e
            while True:
                try:
                    self._queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    if self.cancel.is_set() or self._closed:
                        self._drop()  # the consumer gave up: close the connection, nobody reads it
                        return
            if not isinstance(item, bytes) or not item:
                if not isinstance(item, bytes):
                    self._drop()
                return

    def read(self, n: int = -1) -> bytes:
        if not getattr(self, "_prefetching", False):
            return self._fetch(n)
        if self._pending_off >= len(self._pending):
            if self._eof:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._pending, self._pending_off = item, 0
        off = self._pending_off
        if off == 0 and (n is None or n < 0 or n >= len(self._pending)):
            data, self._pending = self._pending, b""  # the whole chunk: no copy
            return data
        # a part: slice from an offset (cutting the rest off each time would copy it again and again)
        end = len(self._pending) if n is None or n < 0 else min(len(self._pending), off + n)
        self._pending_off = end
        return self._pending[off:end]

    def _raw_read(self, n: int) -> bytes:
        assert self._resp is not None
        raw = self._resp.raw if isinstance(self._resp, Response) else self._resp
        return bytes(raw.read(n, decode_content=False))

    def _fetch(self, n: int = -1) -> bytes:
        if self.cancel.is_set():
            raise Cancelled()
        if self.offset >= self.desc.size:
            if not self.verified:
                self._verify()
            return b""
        want = self.desc.size - self.offset if n is None or n < 0 else min(n, self.desc.size - self.offset)
        while True:
            try:
                if self._resp is None:
                    self._open()
                data = self._raw_read(want)
                while self._skip and data:
                    cut = min(self._skip, len(data))
                    data, self._skip = data[cut:], self._skip - cut
                    if not data:
                        data = self._raw_read(want)
                if data:
                    break
                raise ConnectionResetError("connection closed before the end of the blob")
            except (URLLib3Error, OSError, DialError) as e:
                self.failures += 1  # docker's max-download-attempts counts per layer, not per read
                self._drop()
                if self.failures >= self.attempts or self.cancel.is_set():
                    if isinstance(e, DialError):
                        raise
                    raise DialError(f"error pulling {self.desc.digest}: {e}") from e
                self.resumes += 1
                time.sleep(min(0.1 * 2 ** self.failures, 2.0))
        self.sha.update(data)
        self.offset += len(data)
        if self.on_bytes is not None:
            self.on_bytes(self.offset)
        if self.offset >= self.desc.size:
            self._verify()
        return data

    def _verify(self) -> None:
        got = "sha256:" + self.sha.hexdigest()
        self._drop(release=True)
        if got != self.desc.digest:
            raise DigestMismatch(f"filesystem layer verification failed for digest {self.desc.digest}")
        self.verified = True

    def _drop(self, release: bool = False) -> None:
        resp, self._resp = self._resp, None
        if resp is None:
            return
        raw = resp.raw if isinstance(resp, Response) else resp
        try:
            if release:
                raw.drain_conn()
                raw.release_conn()
            else:
                raw.close()
        except (URLLib3Error, OSError):
            pass

    def close(self) -> None:
        self._closed = True
        if not getattr(self, "_prefetching", False):
            self._drop()

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)
