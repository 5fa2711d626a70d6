"""The request body readers: chunked and Content-Length bodies read with ``read`` and ``readinto`` give the
exact body, and leave the connection at the next request (keep-alive)."""

from __future__ import annotations

import io
import os

import pytest

from dockyard.api.request import _ChunkedReader, _LimitedReader

NEXT = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"


def chunked(body: bytes, sizes: list[int], trailer: bytes = b"") -> bytes:
    out = bytearray()
    i = k = 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        k += 1
        piece = body[i:i + n]
        out += b"%x;ext=1\r\n" % len(piece) if k % 3 == 0 else b"%x\r\n" % len(piece)
        out += piece + b"\r\n"
        i += n
    return bytes(out + b"0\r\n" + trailer + b"\r\n")


BODY = os.urandom(200_003)


@pytest.mark.parametrize("bufsize", [1, 511, 4096, 1 << 20])
@pytest.mark.parametrize("sizes", [[512, 10000, 240], [1], [70_000]])
def test_chunked_readinto_gives_the_body_and_stops_at_its_end(bufsize: int, sizes: list[int]) -> None:
    f = io.BufferedReader(io.BytesIO(chunked(BODY, sizes, b"X-Trailer: 1\r\n") + NEXT), 8192)  # type: ignore[arg-type]
    r = _ChunkedReader(f)
    got = bytearray()
    buf = bytearray(bufsize)
    while n := r.readinto(buf):
        got += buf[:n]
    assert bytes(got) == BODY
    assert r.readinto(buf) == 0
    assert f.read() == NEXT


def test_chunked_read_mixes_with_readinto() -> None:
    f = io.BufferedReader(io.BytesIO(chunked(BODY, [10000, 512]) + NEXT))  # type: ignore[arg-type]
    r = _ChunkedReader(f)
    head = r.read(100)  # inside the first chunk
    buf = bytearray(20_000)
    n = r.readinto(buf)
    rest = r.read()
    assert head + bytes(buf[:n]) + rest == BODY
    assert f.read() == NEXT


def test_limited_readinto_stops_at_content_length() -> None:
    f = io.BufferedReader(io.BytesIO(BODY + NEXT))  # type: ignore[arg-type]
    r = _LimitedReader(f, len(BODY))
    got = bytearray()
    buf = bytearray(65536)
    while n := r.readinto(buf):
        got += buf[:n]
    assert bytes(got) == BODY
    assert f.read() == NEXT
