"""Layer tar extraction: escapes refused (leaving nothing), whiteouts both ways, metadata, compression."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator

import pytest
import zstandard

from dockyard.storage.blobs import BlobStore
from dockyard.storage.db import StateDB
from dockyard.storage.layers import LayerStore, chain_ids
from dockyard.storage.tarsafe import (
    OPAQUE_XATTR,
    UnsafeArchive,
    end_of_archive,
    extract_layer,
    tree_chunks,
)


def make_tar(entries: list[tuple[str, str, object]]) -> bytes:
    """entries: (name, kind, arg) with kind file/dir/sym/hard/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            if kind == "file":
                data = arg if isinstance(arg, bytes) else str(arg).encode()
                ti.size = len(data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
                continue
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(arg)
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(arg)
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
            tf.addfile(ti)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: str) -> Iterator[tuple[LayerStore, str]]:
    root = os.path.join(str(tmp_path), "root")
    os.makedirs(root)
    db = StateDB(os.path.join(root, "state.db"))
    yield LayerStore(db, root, BlobStore(root)), root
    db.close()


def _leftovers(root: str) -> list[str]:
    """Anything in the layer area besides the fixed empty dir and link dir, or any blob."""
    layers = sorted(set(os.listdir(os.path.join(root, "layers"))) - {"l", "empty"})
    blobs = os.listdir(os.path.join(root, "blobs", "sha256"))
    return layers + blobs


MALICIOUS = {
    "dotdot": [("../evil", "file", "x")],
    "nested-dotdot": [("a/", "dir", None), ("a/../../evil", "file", "x")],
    "absolute": [("/tmp/evil", "file", "x")],
    "symlink-then-write": [("link", "sym", "{outside}"), ("link/evil", "file", "x")],
    "symlink-dir-then-write": [("d/", "dir", None), ("d/up", "sym", "../../.."), ("d/up/evil", "file", "x")],
    "hardlink-outside": [("h", "hard", "../../outside/target")],
    "hardlink-absolute": [("h", "hard", "{outside}/target")],
    "hardlink-through-symlink": [("link", "sym", "{outside}"), ("h", "hard", "link/target")],
    "whiteout-escape": [("a/", "dir", None), ("a/.wh...", "file", "")],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_layers_refused_and_nothing_left(store: tuple[LayerStore, str], tmp_path: str,
                                                   case: str) -> None:
    layers, root = store
    outside = os.path.join(str(tmp_path), "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "target"), "w") as f:
        f.write("secret")
    entries = [(n.replace("{outside}", outside), k, a.replace("{outside}", outside) if isinstance(a, str) else a)
               for n, k, a in MALICIOUS[case]]
    with pytest.raises(UnsafeArchive):
        layers.register(io.BytesIO(make_tar(entries)), None, "tmp:test")
    assert _leftovers(root) == []
    assert os.listdir(outside) == ["target"]
    assert not os.path.exists("/tmp/evil")
    assert layers.db.query("SELECT * FROM layers") == []


def test_garbage_is_not_a_layer(store: tuple[LayerStore, str]) -> None:
    layers, root = store
    with pytest.raises(UnsafeArchive):
        layers.register(io.BytesIO(b"this is not a tar archive" * 100), None, "tmp:test")
    assert _leftovers(root) == []


def test_metadata_preserved(tmp_path: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        d = tarfile.TarInfo("dir")
        d.type, d.mode, d.uid, d.gid, d.mtime = tarfile.DIRTYPE, 0o750, 1000, 1001, 1_500_000_000
        tf.addfile(d)
        f = tarfile.TarInfo("dir/file")
        f.size, f.mode, f.uid, f.gid, f.mtime = 5, 0o4755, 12, 34, 1_400_000_000
        f.pax_headers = {"SCHILY.xattr.user.note": "hello"}
        tf.addfile(f, io.BytesIO(b"12345"))
        h = tarfile.TarInfo("hard")
        h.type, h.linkname = tarfile.LNKTYPE, "dir/file"
        tf.addfile(h)
        s = tarfile.TarInfo("sym")
        s.type, s.linkname, s.uid = tarfile.SYMTYPE, "/nowhere/at/all", 7
        tf.addfile(s)
        c = tarfile.TarInfo("null")
        c.type, c.devmajor, c.devminor, c.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tf.addfile(c)
        p = tarfile.TarInfo("fifo")
        p.type, p.mode = tarfile.FIFOTYPE, 0o600
        tf.addfile(p)
    data = buf.getvalue()
    dest = os.path.join(str(tmp_path), "d")
    os.makedirs(dest)
    stats = extract_layer(io.BytesIO(data), dest)
    assert stats.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    st = os.lstat(os.path.join(dest, "dir/file"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o4755, 12, 34, 1_400_000_000)
    assert os.getxattr(os.path.join(dest, "dir/file"), "user.note") == b"hello"
    dst = os.lstat(os.path.join(dest, "dir"))
    assert (stat.S_IMODE(dst.st_mode), dst.st_uid, int(dst.st_mtime)) == (0o750, 1000, 1_500_000_000)
    assert os.lstat(os.path.join(dest, "hard")).st_ino == st.st_ino
    assert os.readlink(os.path.join(dest, "sym")) == "/nowhere/at/all"
    assert os.lstat(os.path.join(dest, "sym")).st_uid == 7
    cst = os.lstat(os.path.join(dest, "null"))
    assert stat.S_ISCHR(cst.st_mode) and cst.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(os.path.join(dest, "fifo")).st_mode)
    # and back: the regenerated tar carries the same metadata
    back = tarfile.open(fileobj=io.BytesIO(b"".join(tree_chunks(dest, False)) + end_of_archive()))
    members = {m.name.rstrip("/"): m for m in back.getmembers()}
    assert members["hard"].islnk() and members["hard"].linkname == "dir/file"
    assert members["dir/file"].mode == 0o4755 and members["dir/file"].uid == 12
    assert members["dir/file"].pax_headers.get("SCHILY.xattr.user.note") == "hello"
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (1, 3)


def test_whiteouts_round_trip(tmp_path: str) -> None:
    data = make_tar([("etc/", "dir", None), ("etc/.wh.gone", "file", ""), ("opq/", "dir", None),
                     ("opq/.wh..wh..opq", "file", ""), ("opq/kept", "file", "k")])
    dest = os.path.join(str(tmp_path), "d")
    os.makedirs(dest)
    extract_layer(io.BytesIO(data), dest)
    wh = os.lstat(os.path.join(dest, "etc/gone"))
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(os.path.join(dest, "opq"), OPAQUE_XATTR) == b"y"
    assert not os.path.exists(os.path.join(dest, "etc/.wh.gone"))
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(b"".join(tree_chunks(dest, True)))).getmembers()]
    assert "etc/.wh.gone" in names and "etc/gone" not in names
    assert "opq/.wh..wh..opq" in names and "opq/kept" in names
    assert not any(OPAQUE_XATTR in str(m.pax_headers) for m in
                   tarfile.open(fileobj=io.BytesIO(b"".join(tree_chunks(dest, True)))).getmembers())


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_layers_have_the_uncompressed_diff_id(tmp_path: str, codec: str) -> None:
    data = make_tar([("a/", "dir", None), ("a/b", "file", os.urandom(300_000))])
    packed = gzip.compress(data) if codec == "gzip" else zstandard.ZstdCompressor().compress(data)
    dest = os.path.join(str(tmp_path), codec)
    os.makedirs(dest)
    stats = extract_layer(io.BytesIO(packed), dest)
    assert stats.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert os.path.getsize(os.path.join(dest, "a/b")) == 300_000


def test_chain_ids() -> None:
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_ids([]) == []


def test_layer_shared_and_collected(store: tuple[LayerStore, str]) -> None:
    layers, root = store
    data = make_tar([("f", "file", "x")])
    one = layers.register(io.BytesIO(data), None, "image:one")
    two = layers.register(io.BytesIO(data), None, "image:two")
    assert one.chain_id == two.chain_id
    layers.release("image:one")
    assert layers.gc() == []
    layers.release("image:two")
    assert layers.gc() == [one.chain_id]
    assert _leftovers(root) == []
