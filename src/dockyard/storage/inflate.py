"""gzip decompression in large pieces, for layer streams.

``gzip.GzipFile`` (Python 3.11) feeds zlib 8 KiB of input per call and checks the CRC itself, so a 200 MB layer
costs ~25 000 trips through Python code holding the GIL, which layers unpacked alongside then wait for. Here
zlib gets 1 MiB of input per call and checks each member's CRC-32 and length trailer itself (``wbits=31``);
inflating releases the GIL. Semantics follow Go's multistream ``gzip.Reader``, which docker uses: members
follow one another, NUL padding between or after them is allowed (as Python's reader does), anything else after
a member is an error, and a stream that ends inside a member is an error.
"""

from __future__ import annotations

import zlib
from typing import IO, Any

INPUT_CHUNK = 1 << 20
OUTPUT_CHUNK = 1 << 20
_MAGIC = b"\x1f\x8b"


class GzipFormatError(OSError):
    """Not gzip, a corrupt member, or a stream cut short (what ``gzip.GzipFile`` raises as BadGzipFile/EOFError)."""


class GzipReader:
    """``read(n)`` of the decompressed bytes of the gzip stream ``raw``; may return fewer than ``n`` bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self._d: zlib._Decompress | None = None  # the member being inflated
        self._pending = b""  # input not yet given to a decompressor (after a member's end)
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._started = False

    def _next_input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self.raw.read(INPUT_CHUNK)

    def _start_member(self) -> bool:
        """Skip NUL padding up to the next member; False at the end of the stream."""
        while True:
            data = self._next_input()
            if not data:
                if not self._started:
                    raise GzipFormatError("gzip: empty stream")
                return False
            data = data.lstrip(b"\0")
            if not data:
                continue
            if len(data) < 2:
                more = self.raw.read(INPUT_CHUNK)
                data += more
                if len(data) < 2:
                    raise GzipFormatError("gzip: invalid header")
            if data[:2] != _MAGIC:
                raise GzipFormatError("gzip: invalid header")
            self._started = True
            self._d = zlib.decompressobj(31)
            self._pending = data
            return True

    def _inflate(self, want: int) -> bytes:
        """At least one byte of output, or b"" at the end of the stream."""
        while True:
            d = self._d
            if d is None:
                if self._eof or not self._start_member():
                    self._eof = True
                    return b""
                d = self._d
                assert d is not None
            data = d.unconsumed_tail or self._next_input()
            if not data:
                raise GzipFormatError("Compressed file ended before the end-of-stream marker was reached")
            try:
                out = d.decompress(data, want)
            except zlib.error as e:
                raise GzipFormatError(f"gzip: {e}") from None
            if d.eof:
                self._pending = d.unused_data
                self._d = None
            if out:
                return out

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(OUTPUT_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        if n == 0:
            return b""
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._inflate(max(n, OUTPUT_CHUNK)), 0
            if not self._buf:
                return b""
        pos = self._pos
        if pos == 0 and n >= len(self._buf):
            data, self._buf = self._buf, b""  # the whole piece: no copy
            return data
        end = min(len(self._buf), pos + n)
        self._pos = end
        return self._buf[pos:end]

    def readinto(self, b: Any) -> int:
        """``read`` into ``b``, for a consumer that fills a buffer of its own (the build context's tar reader)."""
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._buf = b""
