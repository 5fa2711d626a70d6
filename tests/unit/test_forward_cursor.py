"""tarfile's seekable mode over a forward-only stream: the same bytes, members and diff ID as a plain read."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile

import pytest

from dockyard.storage.tarsafe import ForwardCursor, extract_layer


class _Pieces(io.RawIOBase):
    """Reads of random sizes (1 byte up to twice what was asked), like a decompressor or a socket."""

    def __init__(self, data: bytes, seed: int, more: bool = False) -> None:
        self.data, self.pos, self.rng, self.more = data, 0, random.Random(seed), more

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self.data)
        k = self.rng.randint(1, max(1, 2 * n if self.more else n))
        piece = self.data[self.pos:self.pos + k]
        self.pos += len(piece)
        return piece


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("a", "a/b", "c"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tf.addfile(ti)
        rng = random.Random(7)
        for i in range(300):
            data = rng.randbytes(rng.choice([0, 1, 511, 512, 513, 4000, 70_000, 300_000]))
            ti = tarfile.TarInfo(f"a/b/f{i}" if i % 2 else "c/" + "long-name-" * 12 + str(i))
            ti.size = len(data)
            ti.mtime = 1_600_000_000 + i
            if i % 7 == 0:
                ti.pax_headers = {"SCHILY.xattr.user.k": f"v{i}"}
            tf.addfile(ti, io.BytesIO(data))
        ln = tarfile.TarInfo("c/link")
        ln.type, ln.linkname = tarfile.SYMTYPE, "../a/b/f1"
        tf.addfile(ln)
    return buf.getvalue() + b"\0" * 4096  # trailing blocks after the end, as some writers leave


TAR = _tar()


@pytest.mark.parametrize("more", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_give_the_stream_in_order(seed: int, more: bool) -> None:
    cur = ForwardCursor(_Pieces(TAR, seed, more))
    rng = random.Random(seed)
    out = []
    while True:
        n = rng.choice([1, 512, 10240, 65536, 1 << 20])
        if rng.random() < 0.2:
            target = cur.tell() + rng.randint(0, 5000)
            cur.seek(target)
            out.append(TAR[len(b"".join(out)):min(target, len(TAR))])
            continue
        data = cur.read(n)
        assert len(data) == min(n, len(TAR) - len(b"".join(out)))
        if not data:
            break
        out.append(data)
        assert cur.tell() == len(b"".join(out))
    assert b"".join(out) == TAR


def test_seeking_back_is_refused() -> None:
    cur = ForwardCursor(io.BytesIO(TAR))
    cur.read(2000)
    with pytest.raises(OSError):
        cur.seek(1000)
    assert cur.seek(2000) == 2000


@pytest.mark.parametrize("more", [False, True])
def test_tarfile_sees_the_same_members(more: bool) -> None:
    def content(tf: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
        return (tf.extractfile(m) or io.BytesIO()).read() if m.isreg() else b""

    with tarfile.open(fileobj=io.BytesIO(TAR), mode="r|") as ref:
        want = [(m.name, m.size, m.type, m.pax_headers, m.offset_data, content(ref, m)) for m in ref]
    with tarfile.open(fileobj=ForwardCursor(_Pieces(TAR, 9, more)), mode="r:") as tf:  # type: ignore[call-overload]
        got = [(m.name, m.size, m.type, m.pax_headers, m.offset_data, content(tf, m)) for m in tf]
    assert len(got) == 304
    assert got == want


def test_extraction_through_pieces_matches_the_tar(tmp_path: str) -> None:
    dest = os.path.join(str(tmp_path), "diff")
    os.mkdir(dest)
    stats = extract_layer(_Pieces(TAR, 4, True), dest)  # type: ignore[arg-type]
    assert stats.diff_id == "sha256:" + hashlib.sha256(TAR).hexdigest()
    assert stats.tar_size == len(TAR)
    with tarfile.open(fileobj=io.BytesIO(TAR)) as ref:
        for m in ref:
            path = os.path.join(dest, m.name)
            if m.isreg():
                with open(path, "rb") as f:
                    assert f.read() == (ref.extractfile(m) or io.BytesIO()).read(), m.name
                assert os.stat(path).st_mtime == m.mtime
            elif m.issym():
                assert os.readlink(path) == m.linkname


@pytest.mark.parametrize("more", [False, True])
def test_copy_to_fd_writes_exactly_the_range(tmp_path: str, more: bool) -> None:
    cur = ForwardCursor(_Pieces(TAR, 11, more))
    assert cur.read(512) == TAR[:512]  # a header read: the read-ahead holds the start of the range
    out = os.path.join(str(tmp_path), "out")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert cur.copy_to_fd(fd, 600, 900_000)
    finally:
        os.close(fd)
    with open(out, "rb") as f:
        assert f.read() == TAR[600:900_600]
    assert cur.tell() == 900_600
    assert cur.read(100) == TAR[900_600:900_700]  # what follows is intact
    fd = os.open(out, os.O_WRONLY | os.O_TRUNC)
    try:
        assert not cur.copy_to_fd(fd, len(TAR) - 10, 50)  # the stream ends first
    finally:
        os.close(fd)
