"""A layer tar rebuilt from its unpacked tree and tar-split record is the very tar (same bytes, same diff ID)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile

import pytest

from dockyard.storage.tarsafe import extract_layer
from dockyard.storage.tarsplit import RebuiltTar, SplitConflict, SplitRecorder, TarSplitMismatch, tar_chunks


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, **kw: object) -> None:
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    if data is not None:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def _tar(fmt: int, build: object, tail: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        build(tf)  # type: ignore[operator]
    return buf.getvalue() + tail


def _rich(tf: tarfile.TarFile) -> None:
    _add(tf, "etc", type=tarfile.DIRTYPE, mode=0o755, mtime=1_600_000_000)
    for size in (0, 1, 511, 512, 513, 10_000, 70_000, (2 << 20) + 7):
        _add(tf, f"etc/f{size}", os.urandom(size), mode=0o640, uid=1000, gid=50, mtime=1_600_000_001)
    _add(tf, "etc/" + "long" * 40, b"long name content", mode=0o644)
    _add(tf, "etc/ünïcödé", b"non-ascii", mode=0o600)
    _add(tf, "etc/link", type=tarfile.SYMTYPE, linkname="f1")
    _add(tf, "etc/hard", type=tarfile.LNKTYPE, linkname="etc/f511")
    _add(tf, "etc/.wh.gone", b"")
    _add(tf, "deep/a/b/c/file", b"deep")


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("tail", [b"", b"\0" * 8192, b"trailing bytes after the end blocks"])
def test_rebuilt_tar_is_identical(tmp_path: object, fmt: int, tail: bytes) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        def build(tf: tarfile.TarFile) -> None:
            _add(tf, "d", type=tarfile.DIRTYPE)
            _add(tf, "d/x", os.urandom(3000))
            _add(tf, "d/.wh.y", b"")
    else:
        build = _rich
    raw = _tar(fmt, build, tail)
    root = os.path.join(str(tmp_path), "diff")
    os.mkdir(root)
    split_path = os.path.join(str(tmp_path), "split")
    with open(split_path, "wb") as out:
        stats = extract_layer(io.BytesIO(gzip.compress(raw)), root, split=SplitRecorder(out))
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert stats.diff_id == diff_id
    rebuilt = b"".join(tar_chunks(split_path, root, diff_id))
    assert rebuilt == raw
    # the record holds no file content: far smaller than the tar
    assert os.path.getsize(split_path) < 64 << 10 < len(raw) or fmt == tarfile.USTAR_FORMAT
    with RebuiltTar(tar_chunks(split_path, root, diff_id)) as f:
        got = b""
        while block := f.read(333_333):
            got += block
    assert got == raw


def test_changed_file_fails_the_rebuild(tmp_path: object) -> None:
    raw = _tar(tarfile.PAX_FORMAT, _rich)
    root = os.path.join(str(tmp_path), "diff")
    os.mkdir(root)
    split_path = os.path.join(str(tmp_path), "split")
    with open(split_path, "wb") as out:
        stats = extract_layer(io.BytesIO(raw), root, split=SplitRecorder(out))
    with open(os.path.join(root, "etc", "f513"), "r+b") as f:
        f.write(b"X")
    with pytest.raises(TarSplitMismatch):
        b"".join(tar_chunks(split_path, root, stats.diff_id))
    os.truncate(os.path.join(root, "etc", "f513"), 10)
    with pytest.raises(TarSplitMismatch, match="shorter"):
        b"".join(tar_chunks(split_path, root, stats.diff_id))


@pytest.mark.parametrize("second", [
    ("dup", b"again", {}),                        # the same name twice: the first content is gone
    ("d/.wh.f", b"", {}),                         # a whiteout of a file of this very layer
    ("d", b"now a file", {}),                     # a directory holding recorded content turned into a file
    ("d/f", None, {"type": tarfile.DIRTYPE}),     # a recorded file turned into a directory
])
def test_entries_that_remove_recorded_content_refuse_the_split(tmp_path: object, second: tuple) -> None:
    name, data, kw = second

    def build(tf: tarfile.TarFile) -> None:
        _add(tf, "dup", b"first")
        _add(tf, "d", type=tarfile.DIRTYPE)
        _add(tf, "d/f", b"content")
        _add(tf, name, data, **kw)

    root = os.path.join(str(tmp_path), "diff")
    os.mkdir(root)
    with open(os.path.join(str(tmp_path), "split"), "wb") as out, pytest.raises(SplitConflict):
        extract_layer(io.BytesIO(_tar(tarfile.PAX_FORMAT, build)), root, split=SplitRecorder(out))


def test_directory_entry_over_a_parent_keeps_the_split(tmp_path: object) -> None:
    def build(tf: tarfile.TarFile) -> None:
        _add(tf, "d", type=tarfile.DIRTYPE)
        _add(tf, "d/f", b"content")
        _add(tf, "d", type=tarfile.DIRTYPE, mode=0o700)  # a directory again: its files stay

    raw = _tar(tarfile.PAX_FORMAT, build)
    root = os.path.join(str(tmp_path), "diff")
    os.mkdir(root)
    split_path = os.path.join(str(tmp_path), "split")
    with open(split_path, "wb") as out:
        stats = extract_layer(io.BytesIO(raw), root, split=SplitRecorder(out))
    assert b"".join(tar_chunks(split_path, root, stats.diff_id)) == raw


def test_empty_stream_is_an_empty_layer(tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "diff")
    os.mkdir(root)
    split_path = os.path.join(str(tmp_path), "split")
    with open(split_path, "wb") as out:
        stats = extract_layer(io.BytesIO(b""), root, split=SplitRecorder(out))
    assert b"".join(tar_chunks(split_path, root, stats.diff_id)) == b""
