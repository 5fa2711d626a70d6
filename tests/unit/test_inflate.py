"""The layer gzip reader against Python's gzip module (the reference) on a corpus, and its refusals."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import pytest

from dockyard.storage.inflate import GzipFormatError, GzipReader
from dockyard.storage.tarsafe import decompressed


def _gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def _read_all(raw: bytes, n: int) -> bytes:
    r = GzipReader(io.BytesIO(raw))  # type: ignore[arg-type]
    out = []
    while chunk := r.read(n):
        assert len(chunk) <= n
        out.append(chunk)
    return b"".join(out)


class _Trickle(io.RawIOBase):
    """Hands out at most ``step`` bytes per read, as a network stream may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def read(self, n: int = -1) -> bytes:
        k = self.step if n is None or n < 0 else min(n, self.step)
        piece = self.data[self.pos:self.pos + k]
        self.pos += len(piece)
        return piece


RANDOM = os.urandom(3 << 20)
TEXT = b"".join(b"line %d of a text file\n" % i for i in range(200_000))
CORPUS = {
    "empty member": _gz(b""),
    "one byte": _gz(b"x"),
    "text": _gz(TEXT),
    "random (stored blocks)": _gz(RANDOM, 1),
    "two members": _gz(TEXT[:1000]) + _gz(RANDOM[:5000]),
    "many members": b"".join(_gz(TEXT[i:i + 70_000]) for i in range(0, len(TEXT), 70_000)),
    "empty members between": _gz(b"a") + _gz(b"") + _gz(b"") + _gz(b"b"),
    "NUL padding after": _gz(TEXT[:5000]) + b"\0" * 4096,
    "NUL padding between": _gz(b"head") + b"\0" * 700 + _gz(b"tail"),
    "level 9": _gz(TEXT, 9),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize("n", [1, 511, 10240, 1 << 20, 5 << 20])
def test_same_bytes_as_gzip_module(name: str, n: int) -> None:
    raw = CORPUS[name]
    if n == 1 and len(gzip.decompress(raw)) > 100_000:
        pytest.skip("byte-at-a-time over megabytes is slow and adds nothing")
    assert _read_all(raw, n) == gzip.decompress(raw)


@pytest.mark.parametrize("step", [1, 2, 3, 4096])
def test_input_arriving_in_small_pieces(step: int) -> None:
    raw = _gz(b"abc" * 1000) + b"\0\0" + _gz(b"xyz" * 100)
    r = GzipReader(_Trickle(raw, step))  # type: ignore[arg-type]
    assert r.read(-1) == gzip.decompress(raw)


def test_read_all_at_once_and_zero() -> None:
    raw = CORPUS["many members"]
    r = GzipReader(io.BytesIO(raw))  # type: ignore[arg-type]
    assert r.read(0) == b""
    assert r.read() == gzip.decompress(raw)
    assert r.read(10) == b""


def test_concatenated_with_a_stream_made_by_zlib() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    raw = c.compress(TEXT) + c.flush() + _gz(b"end")
    assert _read_all(raw, 1 << 16) == gzip.decompress(raw)


@pytest.mark.parametrize("cut", [1, 10, 100, 5000])
def test_truncated_stream_is_an_error(cut: int) -> None:
    raw = _gz(TEXT)[:-cut]
    with pytest.raises(EOFError):
        gzip.decompress(raw)
    with pytest.raises(GzipFormatError, match="ended before the end-of-stream"):
        _read_all(raw, 1 << 20)


def test_bad_crc_is_an_error() -> None:
    raw = bytearray(_gz(TEXT[:10000]))
    raw[-8] ^= 0xFF  # the CRC-32 of the trailer
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(raw))
    with pytest.raises(GzipFormatError, match="incorrect data check"):
        _read_all(bytes(raw), 1 << 20)


def test_bad_length_is_an_error() -> None:
    raw = bytearray(_gz(TEXT[:10000]))
    raw[-1] ^= 0x01  # ISIZE
    with pytest.raises(GzipFormatError, match="incorrect length check"):
        _read_all(bytes(raw), 1 << 20)


def test_corrupt_deflate_data_is_an_error() -> None:
    raw = bytearray(_gz(TEXT))
    for i in range(40, 60):
        raw[i] ^= 0x5A
    with pytest.raises(GzipFormatError):
        _read_all(bytes(raw), 1 << 20)


@pytest.mark.parametrize("tail", [b"garbage after the member", b"\x1f", b"\0\0x"])
def test_other_bytes_after_a_member_are_an_error(tail: bytes) -> None:
    raw = _gz(b"content") + tail
    with pytest.raises(GzipFormatError):
        _read_all(raw, 1 << 20)


def test_decompressed_uses_it_for_gzip_and_keeps_plain_and_zstd() -> None:
    import zstandard

    assert decompressed(io.BytesIO(_gz(TEXT))).read(-1) == TEXT  # type: ignore[arg-type]
    assert decompressed(io.BytesIO(TEXT)).read(-1) == TEXT  # type: ignore[arg-type]
    z = zstandard.ZstdCompressor().compress(TEXT)
    assert decompressed(io.BytesIO(z)).read(-1) == TEXT  # type: ignore[arg-type]
