"""tar header blocks parsed in one struct unpack, for layers of thousands of small files.

``tarfile.TarInfo.frombuf`` decodes each of a header's 16 fields with a Python helper and sums the block twice
for its checksum: ~70 µs per entry, most of a small file's unpack time (and all of it under the GIL). The
subclass here takes the common header (a plain ustar/GNU/v7 block with octal numbers and an unsigned
checksum) in one ``struct.unpack_from`` and one ``sum``, and hands anything else (base-256 numbers, a signed
checksum, a bad block, old GNU sparse headers) to ``tarfile``'s own parser, so the result and the errors are
tarfile's. PAX and GNU long-name records are still processed by ``tarfile`` (``_proc_member``) on the object
made here. ``tests/unit/test_tarheader.py`` compares the two on a corpus.
"""

from __future__ import annotations

import struct
import tarfile

_FIELDS = struct.Struct("100s8s8s8s12s12s8sc100s8x32s32s8s8s155s")
_ZERO_BLOCK = b"\0" * tarfile.BLOCKSIZE
_CHKSUM_SPACES = 8 * 0x20


class _Slow(Exception):
    """A field the fast path does not decode: tarfile parses the block."""


def _num(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):
        raise _Slow()
    p = field.find(b"\0")
    if p >= 0:
        field = field[:p]
    try:
        return int(field.strip() or b"0", 8)
    except ValueError:
        raise _Slow() from None


def _str(field: bytes, encoding: str, errors: str) -> str:
    p = field.find(b"\0")
    return (field[:p] if p >= 0 else field).decode(encoding, errors)


class FastTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:  # type: ignore[override]
        if len(buf) != tarfile.BLOCKSIZE or buf == _ZERO_BLOCK or buf[156:157] == tarfile.GNUTYPE_SPARSE:
            return super().frombuf(buf, encoding, errors)
        (name, mode, uid, gid, size, mtime, chk, typ, linkname, uname, gname, devmajor, devminor,
         prefix) = _FIELDS.unpack_from(buf)
        try:
            chksum = _num(chk)
            if chksum != sum(buf) - sum(chk) + _CHKSUM_SPACES:
                raise _Slow()  # a signed-char checksum, or a bad one: tarfile decides
            obj = cls()
            obj.mode = _num(mode)
            obj.uid = _num(uid)
            obj.gid = _num(gid)
            obj.size = _num(size)
            obj.mtime = _num(mtime)
            obj.devmajor = _num(devmajor)
            obj.devminor = _num(devminor)
        except _Slow:
            return super().frombuf(buf, encoding, errors)
        obj.name = _str(name, encoding, errors)
        obj.chksum = chksum
        obj.type = typ
        obj.linkname = _str(linkname, encoding, errors)
        obj.uname = _str(uname, encoding, errors)
        obj.gname = _str(gname, encoding, errors)
        pre = _str(prefix, encoding, errors)
        if typ == tarfile.AREGTYPE and obj.name.endswith("/"):  # v7: a directory is a file named "x/"
            obj.type = tarfile.DIRTYPE
        if obj.type == tarfile.DIRTYPE:
            obj.name = obj.name.rstrip("/")
        if pre and obj.type not in tarfile.GNU_TYPES:
            obj.name = pre + "/" + obj.name
        return obj
