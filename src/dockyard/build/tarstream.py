"""A fast sequential tar reader for build contexts (ustar, GNU long names, PAX records; numbers in octal or
base-256). Python's ``tarfile`` spends most of an upload's time parsing 5000 headers; this reads them with
plain slicing. A stream that ends without its end-of-archive blocks (as the docker CLI's can) just ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


class TarFormatError(ValueError):
    pass


@dataclass
class Member:
    name: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    type: bytes  # b"0" file, b"5" dir, b"2" symlink, b"1" hard link, others
    linkname: str


def _num(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 (GNU) for big values
        v = 0
        for b in field[1:]:
            v = (v << 8) | b
        return v
    s = field.split(b"\0", 1)[0].strip(b" \0")
    return int(s, 8) if s else 0


def _cstr(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class Source(Protocol):
    def readinto(self, b: Any, /) -> int | None: ...


class TarReader:
    """Reads the stream into one fixed buffer (``readinto``, no per-read allocation) and hands member data out
    as views of it, so the upload's bytes are copied once, from the socket, before they are compared or
    written."""

    BUF = 1 << 20

    def __init__(self, raw: Source) -> None:
        self.raw = raw
        self.buf = bytearray(self.BUF)
        self.mv = memoryview(self.buf)
        self.pos = 0
        self.end = 0
        self.left = 0  # data bytes of the current member not yet read
        self.pad = 0

    def _more(self) -> bool:
        """Read what has arrived into the buffer, unread bytes moved to the front first (callers ask for more
        only when less than a header is left, so the move is small)."""
        if self.pos:
            avail = self.end - self.pos
            self.mv[:avail] = self.mv[self.pos:self.end]
            self.pos, self.end = 0, avail
        if self.end == len(self.buf):
            raise TarFormatError("tar header too large")
        got = self.raw.readinto(self.mv[self.end:])
        if not got:
            return False
        self.end += got
        return True

    def _fill(self, n: int) -> bool:
        """At least ``n`` (<= the buffer's size) unread bytes in the buffer; False at the end of the stream."""
        while self.end - self.pos < n:
            if not self._more():
                return False
        return True

    def _take(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self.pos == self.end and not self._more():
                raise TarFormatError("unexpected end of data")
            k = min(n - len(out), self.end - self.pos)
            out += self.mv[self.pos:self.pos + k]
            self.pos += k
        return bytes(out)

    def view(self, n: int) -> memoryview:
        """Up to ``n`` bytes of the current member's data as a view of the buffer, valid until the next call on
        this reader (empty at the member's end)."""
        n = min(n, self.left)
        if n <= 0:
            return self.mv[0:0]
        if self.pos == self.end and not self._more():
            raise TarFormatError("unexpected end of data")
        k = min(n, self.end - self.pos)
        out = self.mv[self.pos:self.pos + k]
        self.pos += k
        self.left -= k
        return out

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current member's data."""
        return bytes(self.view(n))

    def _skip_rest(self) -> None:
        while self.left:
            if not self.view(self.BUF):
                break
        if self.pad:
            self._fill(self.pad)
            self.pos += min(self.pad, self.end - self.pos)
            self.pad = 0

    def __iter__(self) -> Iterator[Member]:
        pax: dict[str, str] = {}
        long_name = long_link = ""
        while True:
            self._skip_rest()
            if not self._fill(512):
                return
            hdr = bytes(self.mv[self.pos:self.pos + 512])
            self.pos += 512
            if hdr == b"\0" * 512:
                return
            try:
                size = _num(hdr[124:136])
                mode = _num(hdr[100:108])
                uid, gid = _num(hdr[108:116]), _num(hdr[116:124])
                mtime = _num(hdr[136:148])
            except ValueError:
                raise TarFormatError("invalid tar header") from None
            typ = hdr[156:157] or b"0"
            if typ == b"\0":
                typ = b"0"
            name = _cstr(hdr[0:100])
            if hdr[257:262] == b"ustar":
                prefix = _cstr(hdr[345:500])
                if prefix:
                    name = prefix + "/" + name
            link = _cstr(hdr[157:257])
            padded = (size + 511) // 512 * 512
            if typ in (b"x", b"g", b"L", b"K"):
                data = self._take(padded)[:size]
                if typ == b"x":
                    pax = _pax(data)
                elif typ == b"L":
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif typ == b"K":
                    long_link = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                continue
            if long_name:
                name, long_name = long_name, ""
            if long_link:
                link, long_link = long_link, ""
            if pax:
                name = pax.get("path", name)
                link = pax.get("linkpath", link)
                size = int(pax.get("size", size))
                uid = int(pax.get("uid", uid))
                gid = int(pax.get("gid", gid))
                mtime = int(float(pax.get("mtime", mtime)))
                padded = (size + 511) // 512 * 512
                pax = {}
            if typ in (b"1", b"2", b"3", b"4", b"5", b"6"):
                size = padded = 0
            self.left = size
            self.pad = padded - size
            yield Member(name, mode & 0o7777, uid, gid, size, mtime, typ, link)


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(data):
        sp = data.find(b" ", i)
        if sp < 0:
            break
        try:
            length = int(data[i:sp])
        except ValueError:
            break
        rec = data[sp + 1:i + length - 1]
        k, _, v = rec.partition(b"=")
        out[k.decode()] = v.decode("utf-8", "surrogateescape")
        i += length
    return out
