"""A COPY layer written straight into its directory (``LayerBuilder.written``) is the same layer an extraction of
its tar makes: the same tar bytes (so the same diff ID) and the same tree (types, owners, modes, mtimes,
content, link targets), including directories whose ancestors have no entry and read-only directories."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from dockyard.build.layertar import Entry, LayerBuilder
from dockyard.storage.tarsafe import extract_layer
from dockyard.util.tario import ChunkReader


def _tree(root: str) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            extra: object = ""
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(full)
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        int(st.st_mtime), st.st_size if not stat.S_ISDIR(st.st_mode) else 0, extra)
    return out


def _fds_under(root: str) -> list[str]:
    """Open descriptors of this process that point into ``root`` (other tests' descriptors do not count)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == root or target.startswith(root + "/"):
            out.append(target)
    return out


def _layer(src: str) -> LayerBuilder:
    big = os.path.join(src, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(3 * (1 << 20) + 17))  # several read chunks, not block aligned
    small = os.path.join(src, "small.txt")
    with open(small, "wb") as f:
        f.write(b"hello\n")
    empty = os.path.join(src, "empty")
    open(empty, "wb").close()
    lb = LayerBuilder()
    lb.add_dir("app", 0o755, 0, 0, 1_600_000_000)
    lb.add_dir("app/ro", 0o555, 1000, 1000)
    lb.add(Entry("app/ro/big.bin", "file", 0o644, 1000, 1000, source=big))
    lb.add(Entry("app/setuid", "file", 0o4755, 0, 0, source=small))
    lb.add(Entry("app/empty", "file", 0o600, 5, 6, source=empty))
    lb.add(Entry("app/heredoc", "bytes", 0o644, 0, 0, data=b"from a heredoc\n"))
    lb.add(Entry("app/link", "symlink", 0o777, 7, 8, linkname="../etc/passwd"))
    lb.add(Entry("no/parent/entry.txt", "file", 0o640, 0, 0, source=small))  # ancestors implied
    lb.add(Entry("top.txt", "file", 0o644, 0, 0, source=small, mtime=1_234_567_890))
    return lb


def test_written_layer_equals_extracted_layer(tmp_path: pytest.TempPathFactory) -> None:
    base = str(tmp_path)
    src, a, b = (os.path.join(base, n) for n in ("src", "extracted", "written"))
    for d in (src, a, b):
        os.makedirs(d)
    lb = _layer(src)
    tar = b"".join(lb.chunks())
    stats = extract_layer(ChunkReader(iter([tar])), a)  # type: ignore[arg-type]
    written = b"".join(lb.written(b))
    assert written == tar
    assert "sha256:" + hashlib.sha256(written).hexdigest() == stats.diff_id
    want, got = _tree(a), _tree(b)
    assert len(want) == 11
    for implied in ("no", "no/parent"):  # made when their child came: their mtime is the moment of making
        want[implied] = want[implied][:4] + want[implied][5:]
        got[implied] = got[implied][:4] + got[implied][5:]
    assert got == want


def test_written_layer_leaves_no_fd_open(tmp_path: pytest.TempPathFactory) -> None:
    base = str(tmp_path)
    src, out = os.path.join(base, "src"), os.path.join(base, "out")
    os.makedirs(src)
    os.makedirs(out)
    lb = _layer(src)
    for i in range(300):  # more directories than the writer keeps open
        lb.add(Entry(f"wide/d{i}/f", "bytes", 0o644, 0, 0, data=b"x"))
    gen = lb.written(out)
    next(gen)
    assert _fds_under(out), "the writer holds its directories open while it runs"
    for _chunk in gen:
        pass
    assert _fds_under(out) == []
    assert len(os.listdir(os.path.join(out, "wide"))) == 300


@pytest.mark.parametrize("name,mode,uid,gid,size,mtime,typ,link", [
    ("f", 0o644, 0, 0, 0, 0, b"0", ""),
    ("dir/sub/", 0o755, 1000, 1000, 0, 1_600_000_000, b"5", ""),
    ("a" * 100, 0o4755, 2097151, 7, 8 ** 11 - 1, 8 ** 11 - 1, b"0", ""),
    ("lnk", 0o777, 0, 0, 0, 0, b"2", "t" * 100),
    ("files/d07/f01234.bin", 0o600, 65534, 65534, 10_000, 0, b"0", ""),
])
def test_ustar_header_is_the_one_tarfile_writes(name: str, mode: int, uid: int, gid: int, size: int, mtime: int,
                                                typ: bytes, link: str) -> None:
    import tarfile

    from dockyard.build.layertar import ustar_header
    from dockyard.util.tario import header_bytes

    ti = tarfile.TarInfo(name)
    ti.mode, ti.uid, ti.gid, ti.size, ti.mtime, ti.type, ti.linkname = mode, uid, gid, size, mtime, typ, link
    ti.uname = ti.gname = ""
    assert ustar_header(name, mode, uid, gid, size, mtime, typ, link) == header_bytes(ti)


@pytest.mark.parametrize("name,uid,size,link", [
    ("a" * 101, 0, 0, ""), ("é", 0, 0, ""), ("f", 8 ** 7, 0, ""), ("f", 0, 8 ** 11, ""), ("l", 0, 0, "x" * 101),
])
def test_ustar_header_declines_what_needs_pax(name: str, uid: int, size: int, link: str) -> None:
    from dockyard.build.layertar import ustar_header

    assert ustar_header(name, 0o644, uid, 0, size, 0, b"0", link) is None
