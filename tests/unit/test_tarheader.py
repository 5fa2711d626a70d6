"""The fast header parser gives what tarfile gives, field for field and error for error, on a corpus."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from dockyard.storage.tarheader import FastTarInfo

ENC, ERR = "utf-8", "surrogateescape"
ATTRS = ("name", "type", "mode", "uid", "gid", "size", "mtime", "chksum", "linkname", "uname", "gname",
         "devmajor", "devminor")


def _members() -> list[tarfile.TarInfo]:
    out = []

    def add(name: str, **kw: object) -> None:
        ti = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(ti, k, v)
        out.append(ti)

    add("file", size=12345, mode=0o644, uid=1000, gid=1000, mtime=1_700_000_000, uname="u", gname="g")
    add("dir", type=tarfile.DIRTYPE, mode=0o755)
    add("dir/sub/", type=tarfile.DIRTYPE, mode=0o2775)
    add("link", type=tarfile.SYMTYPE, linkname="target/of/the/link")
    add("hard", type=tarfile.LNKTYPE, linkname="file")
    add("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    add("dev/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)
    add("fifo", type=tarfile.FIFOTYPE)
    add("suid", mode=0o4755, size=1)
    add("p/" * 40 + "file-with-a-prefix", size=3)  # > 100 chars: ustar prefix field
    add("x" * 99, size=0)
    add("ünïcødé/名前", size=5, uname="ユーザー")
    add("bytes-\udcff-\udcfe", size=1)
    add("big-uid", uid=3_000_000, gid=2_500_000, size=7)
    add("max-octal", size=0o77777777777, mtime=0o77777777777)
    add("zero", size=0, mtime=0, mode=0)
    return out


def _blocks() -> list[bytes]:
    blocks = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        for ti in _members():
            try:
                buf = ti.tobuf(fmt, ENC, ERR)
            except ValueError:
                continue  # not representable in this format
            blocks.extend(buf[i:i + 512] for i in range(0, len(buf), 512))
    gnu = tarfile.TarInfo("huge")
    gnu.size, gnu.uid, gnu.mtime = 10 ** 12, 1 << 30, -5  # base-256 numbers
    blocks.append(gnu.tobuf(tarfile.GNU_FORMAT, ENC, ERR)[:512])
    return blocks


def _crafted() -> list[bytes]:
    base = bytearray(tarfile.TarInfo("crafted").tobuf(tarfile.USTAR_FORMAT, ENC, ERR)[:512])
    out = []

    def with_checksum(b: bytearray, signed: bool = False) -> bytes:
        b[148:156] = b" " * 8
        total = sum((x - 256 if x > 127 else x) if signed else x for x in b)
        b[148:156] = b"%06o\0 " % total
        return bytes(b)

    v7dir = bytearray(base)
    v7dir[0:100] = b"olddir/".ljust(100, b"\0")
    v7dir[156:157] = b"\0"  # AREGTYPE
    out.append(with_checksum(v7dir))
    hi = bytearray(base)
    hi[0:100] = "hé".encode().ljust(100, b"\0")
    out.append(with_checksum(hi, signed=True))  # a Sun/NeXT-style signed checksum
    bad = bytearray(base)
    bad[150] ^= 1
    out.append(bytes(bad))
    nonoct = bytearray(base)
    nonoct[100:108] = b"0000789\0"
    out.append(with_checksum(nonoct))
    spaces = bytearray(base)
    spaces[124:136] = b"   17      \0"
    out.append(with_checksum(spaces))
    blank = bytearray(base)
    blank[108:116] = b"        "
    out.append(with_checksum(blank))
    sparse = bytearray(base)
    sparse[156:157] = tarfile.GNUTYPE_SPARSE
    out.append(with_checksum(sparse))
    out += [b"\0" * 512, bytes(base[:300]), b""]
    rng = random.Random(5)
    for _ in range(200):  # random damage of a valid block, checksum fixed up or not
        b = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(512)] = rng.randrange(256)
        out.append(with_checksum(b) if rng.random() < 0.7 else bytes(b))
    return out


def _parse(cls: type[tarfile.TarInfo], buf: bytes) -> object:
    try:
        ti = cls.frombuf(buf, ENC, ERR)
    except Exception as e:  # noqa: BLE001 - compared, type and text
        return (type(e), str(e))
    return tuple(getattr(ti, a) for a in ATTRS) + (getattr(ti, "_sparse_structs", None),)


CORPUS = _blocks() + _crafted()


def test_corpus_is_broad() -> None:
    kinds = {_parse(tarfile.TarInfo, b)[1] if isinstance(_parse(tarfile.TarInfo, b)[0], type) else "ok"
             for b in CORPUS}
    assert "ok" in kinds and "bad checksum" in kinds and "end of file header" in kinds
    assert len(CORPUS) > 250


@pytest.mark.parametrize("i", range(len(CORPUS)))
def test_same_as_tarfile(i: int) -> None:
    assert _parse(FastTarInfo, CORPUS[i]) == _parse(tarfile.TarInfo, CORPUS[i])


def test_whole_archives_read_the_same() -> None:
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            for ti in _members():
                if fmt == tarfile.USTAR_FORMAT and ti.uid >= 8 ** 7:
                    continue
                data = b"x" * ti.size if ti.isreg() and ti.size < 1 << 20 else b""
                ti.size = len(data) if ti.isreg() else 0
                tf.addfile(ti, io.BytesIO(data))
        raw = buf.getvalue()
        with tarfile.open(fileobj=io.BytesIO(raw)) as ref, \
                tarfile.open(fileobj=io.BytesIO(raw), tarinfo=FastTarInfo) as fast:
            want = [(m.get_info(), m.offset_data, m.pax_headers) for m in ref]
            got = [(m.get_info(), m.offset_data, m.pax_headers) for m in fast]
        assert got == want and len(got) > 10


def test_common_blocks_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = [tarfile.TarInfo(n).tobuf(tarfile.PAX_FORMAT, ENC, ERR)[:512] for n in ("a", "b/c", "p/" * 60 + "q")]
    want = [_parse(FastTarInfo, b) for b in plain]

    def refuse(*_a: object) -> None:
        raise AssertionError("tarfile's parser was used")

    monkeypatch.setattr(tarfile.TarInfo, "frombuf", classmethod(refuse))
    assert [_parse(FastTarInfo, b) for b in plain] == want
