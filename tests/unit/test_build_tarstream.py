"""The build context's hand-written tar reader (build/tarstream.py) against Python's ``tarfile``: the same
members (name, type, mode, owner, mtime, size, link target) and the same data, for every header format a client
sends (ustar with a prefix, GNU long names and base-256 numbers, PAX records), and a stream that stops without
the end-of-archive blocks."""

from __future__ import annotations

import io
import os
import tarfile
from typing import Any

import pytest

from dockyard.build.tarstream import TarFormatError, TarReader

_TYPES = {tarfile.REGTYPE: b"0", tarfile.AREGTYPE: b"0", tarfile.DIRTYPE: b"5", tarfile.SYMTYPE: b"2",
          tarfile.LNKTYPE: b"1", tarfile.FIFOTYPE: b"6"}


def _archive(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        def add(name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = typ
            ti.size = len(data) if typ == tarfile.REGTYPE else 0
            for k, v in kw.items():
                setattr(ti, k, v)
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)

        add("dir", tarfile.DIRTYPE, mode=0o750, uid=12, gid=34, mtime=1_600_000_000)
        add("dir/empty")
        add("dir/file.bin", data=os.urandom(70_000), mode=0o4755, mtime=1_700_000_123)
        add("dir/exact.bin", data=b"x" * 1024)  # a multiple of the block size: no padding
        add("a/" + "deep/" * 30 + "name.txt", data=b"prefix or long name")  # > 100 characters
        if fmt != tarfile.USTAR_FORMAT:
            add("b/" + "n" * 120, data=b"a base name over 100 characters")  # only GNU or PAX can hold it
        add("link", tarfile.SYMTYPE, linkname="dir/" + "t" * 120 if fmt != tarfile.USTAR_FORMAT else "dir/file.bin")
        add("hard", tarfile.LNKTYPE, linkname="dir/file.bin")
        add("fifo", tarfile.FIFOTYPE)
        if fmt != tarfile.USTAR_FORMAT:
            add("big-owner", data=b"owner beyond octal", uid=2**24, gid=2**22 + 7)
            add("unicode-é-ü.txt", data="héllo".encode())
    return buf.getvalue()


def _expected(data: bytes) -> list[tuple[object, ...]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tf:
        for ti in tf:
            content = tf.extractfile(ti).read() if ti.isreg() else b""  # type: ignore[union-attr]
            out.append((ti.name, _TYPES[ti.type], ti.mode & 0o7777, ti.uid, ti.gid, int(ti.mtime), ti.size,
                        ti.linkname, content))
    return out


def _ours(data: bytes, chunk: int = 0) -> list[tuple[object, ...]]:
    raw: io.RawIOBase | io.BytesIO = io.BytesIO(data)
    if chunk:
        raw = _Trickle(data, chunk)
    reader = TarReader(raw)
    out = []
    for m in reader:
        content = bytearray()
        while part := reader.read(1 << 16):
            content += part
        # tarfile drops a directory's trailing slash; unpack_tar normalises names the same way
        out.append((m.name.rstrip("/"), m.type, m.mode, m.uid, m.gid, m.mtime, m.size, m.linkname, bytes(content)))
    return out


class _Trickle(io.RawIOBase):
    """A socket-like stream: at most ``chunk`` bytes per read, whatever was asked."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data = data
        self.pos = 0
        self.chunk = chunk

    def read(self, n: int = -1) -> bytes:
        out = self.data[self.pos:self.pos + min(n if n >= 0 else self.chunk, self.chunk)]
        self.pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        out = self.read(len(b))
        b[:len(out)] = out
        return len(out)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
                         ids=["ustar", "gnu", "pax"])
def test_members_and_data_match_tarfile(fmt: int) -> None:
    data = _archive(fmt)
    want = _expected(data)
    assert len(want) >= 8
    assert _ours(data) == want
    assert _ours(data, chunk=333) == want  # headers and data split across reads


def test_unread_data_is_skipped() -> None:
    data = _archive(tarfile.PAX_FORMAT)
    names = [m.name.rstrip("/") for m in TarReader(io.BytesIO(data))]
    assert names == [e[0] for e in _expected(data)]


def test_stream_without_end_of_archive_just_ends() -> None:
    data = _archive(tarfile.GNU_FORMAT)
    want = _expected(data)
    end = len(data)
    while data[end - 512:end] == b"\0" * 512:  # strip the end-of-archive blocks and the record padding
        end -= 512
    assert _ours(data[:end]) == want


def test_truncated_member_is_an_error() -> None:
    data = _archive(tarfile.USTAR_FORMAT)
    reader = TarReader(io.BytesIO(data[:512 * 4 + 100]))  # inside dir/file.bin's data
    with pytest.raises(TarFormatError):
        for _m in reader:
            while reader.read(1 << 16):
                pass
