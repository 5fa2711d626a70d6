"""An uploaded context received into a slot that holds an earlier upload: the directory ends up exactly as a
fresh unpack of the new tar, unchanged files are not rewritten, and the index the upload returns gives the same
cache checksums as walking and hashing the directory."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from dockyard.build.context import BuildContext, SourceError
from dockyard.build.context_index import ContextIndex
from dockyard.build.upload import receive_context
from dockyard.errors import InvalidParameter

Member = tuple[str, str, bytes | str, int]  # (name, kind, content or link target, mode)


def make_tar(members: list[Member], compress: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compress, format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, mode in members:
            ti = tarfile.TarInfo(name)
            ti.mode = mode
            ti.mtime = 1_700_000_000
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "file":
                assert isinstance(data, bytes)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = str(data)
                tf.addfile(ti)
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = str(data)
                tf.addfile(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                tf.addfile(ti)
    return buf.getvalue()


def tree(root: str) -> dict[str, tuple[int, str]]:
    """Every path below ``root``: (st_mode, content digest or link target)."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(full)
            else:
                extra = ""
            out[rel] = (st.st_mode, extra)
    return out


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyup")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def receive(data: bytes, dest: str, prev: ContextIndex | None) -> ContextIndex:
    return receive_context(io.BytesIO(data), dest, prev)


def fresh(data: bytes, tmp: str) -> tuple[str, ContextIndex]:
    d = tempfile.mkdtemp(dir=tmp)
    return d, receive(data, d, None)


def assert_index_matches_disk(root: str, index: ContextIndex, sources: list[str]) -> None:
    on_disk = BuildContext(root)
    indexed = BuildContext(root, index=index)
    compared = 0
    for pattern in sources:
        try:
            srcs = on_disk.sources(pattern, "COPY")
        except SourceError:  # excluded by .dockerignore: no checksum either way
            continue
        want = on_disk.checksum(srcs)
        assert indexed.checksum(indexed.sources(pattern, "COPY")) == want, pattern
        compared += 1
    assert compared >= 3


FIRST: list[Member] = [
    ("Dockerfile", "file", b"FROM scratch\n", 0o644),
    ("app", "dir", b"", 0o755),
    ("app/main.py", "file", b"print('hi')\n", 0o644),
    ("app/run.sh", "file", b"#!/bin/sh\necho run\n", 0o4755),
    ("app/data", "dir", b"", 0o750),
    ("app/data/big.bin", "file", os.urandom(3 << 20), 0o600),
    ("app/data/same-size.txt", "file", b"aaaa", 0o644),
    ("app/link", "symlink", "main.py", 0o777),
    ("app/hard", "hardlink", "app/main.py", 0o644),
    ("implicit/deeper/file.txt", "file", b"parents not listed", 0o640),
    ("gone", "dir", b"", 0o755),
    ("gone/sub/file", "file", b"removed next time", 0o644),
    ("becomes-dir", "file", b"a file first", 0o644),
    ("becomes-file", "dir", b"", 0o755),
    ("becomes-file/child", "file", b"child", 0o644),
    ("retarget", "symlink", "app", 0o777),
    ("fifo", "fifo", b"", 0o644),
]


def second_members() -> list[Member]:
    changed = dict((m[0], m) for m in FIRST)
    changed["app/data/same-size.txt"] = ("app/data/same-size.txt", "file", b"bbbb", 0o644)
    changed["app/main.py"] = ("app/main.py", "file", b"print('hello')\n", 0o644)
    changed["app/run.sh"] = ("app/run.sh", "file", b"#!/bin/sh\necho run\n", 0o700)  # mode only
    changed["retarget"] = ("retarget", "symlink", "app/data", 0o777)
    del changed["gone"], changed["gone/sub/file"]
    changed["becomes-dir"] = ("becomes-dir", "dir", b"", 0o711)
    changed["becomes-dir/x"] = ("becomes-dir/x", "file", b"x", 0o644)
    del changed["becomes-file/child"]
    changed["becomes-file"] = ("becomes-file", "file", b"now a file", 0o644)
    changed["new.txt"] = ("new.txt", "file", b"added", 0o644)
    return list(changed.values())


SOURCES = [".", "app", "app/data", "app/main.py", "app/link", "implicit", "app/*.py", "retarget"]


def test_fresh_upload_index_matches_disk(tmp: str) -> None:
    data = make_tar(FIRST)
    d, index = fresh(data, tmp)
    assert tree(d)["app/run.sh"][0] == stat.S_IFREG | 0o4755
    assert "fifo" not in tree(d)
    assert os.stat(os.path.join(d, "app/hard")).st_ino == os.stat(os.path.join(d, "app/main.py")).st_ino
    assert_index_matches_disk(d, index, SOURCES)


@pytest.mark.parametrize("known", [True, False], ids=["index-kept", "after-restart"])
def test_second_upload_is_a_fresh_unpack_and_writes_only_changes(tmp: str, known: bool) -> None:
    slot = os.path.join(tmp, "slot")
    os.makedirs(slot)
    first = receive(make_tar(FIRST), slot, None)
    big = os.path.join(slot, "app/data/big.bin")
    before = os.stat(big)
    data = make_tar(second_members())
    index = receive(data, slot, first if known else None)
    ref, ref_index = fresh(data, tmp)
    assert tree(slot) == tree(ref)
    after = os.stat(big)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not written again
    assert index.entries == ref_index.entries | {"": index.entries[""]}
    assert_index_matches_disk(slot, index, SOURCES + ["becomes-dir", "becomes-file", "new.txt"])
    # and a third, identical upload changes nothing at all
    snapshot = {rel: os.lstat(os.path.join(slot, rel)).st_mtime_ns for rel in tree(slot)}
    again = receive(data, slot, index)
    assert again.entries == index.entries
    assert {rel: os.lstat(os.path.join(slot, rel)).st_mtime_ns for rel in tree(slot)} == snapshot


def test_touched_file_with_same_bytes_keeps_its_digest(tmp: str) -> None:
    slot = os.path.join(tmp, "slot")
    os.makedirs(slot)
    members: list[Member] = [("f.txt", "file", b"same", 0o644)]
    first = receive(make_tar(members), slot, None)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:  # same bytes, another mtime
        ti = tarfile.TarInfo("f.txt")
        ti.size, ti.mode, ti.mtime = 4, 0o644, 1_800_000_000
        tf.addfile(ti, io.BytesIO(b"same"))
    again = receive(buf.getvalue(), slot, first)
    assert again.get("f.txt") == first.get("f.txt")


@pytest.mark.parametrize("patterns", ["app/data\n!app/data/big.bin\nimplicit/**\n", "app\n*.txt\n",
                                      "**/*.py\n!app/main.py\n"])
def test_dockerignore_pruning_matches_the_walk(tmp: str, patterns: str) -> None:
    d, index = fresh(make_tar([*FIRST, (".dockerignore", "file", patterns.encode(), 0o644)]), tmp)
    assert BuildContext(d).ignore  # the patterns are in force
    assert_index_matches_disk(d, index, SOURCES)


def test_stale_paths_are_removed_without_following_a_symlink(tmp: str) -> None:
    outside = os.path.join(tmp, "outside")
    os.makedirs(os.path.join(outside, "b"))
    with open(os.path.join(outside, "b", "f"), "w") as f:
        f.write("must stay")
    slot = os.path.join(tmp, "slot")
    os.makedirs(slot)
    first = receive(make_tar([("a", "dir", b"", 0o755), ("a/b", "dir", b"", 0o755),
                              ("a/b/f", "file", b"old", 0o644)]), slot, None)
    receive(make_tar([("a", "symlink", outside, 0o777)]), slot, first)
    assert os.path.islink(os.path.join(slot, "a"))
    with open(os.path.join(outside, "b", "f")) as f:
        assert f.read() == "must stay"


@pytest.mark.parametrize("compress", ["gz", "bz2", "xz"])
def test_compressed_upload(tmp: str, compress: str) -> None:
    d, index = fresh(make_tar(FIRST, compress), tmp)
    ref, ref_index = fresh(make_tar(FIRST), tmp)
    assert tree(d) == tree(ref)
    assert_index_matches_disk(d, index, SOURCES)


def test_truncated_upload_is_refused(tmp: str) -> None:
    data = make_tar(FIRST)
    slot = os.path.join(tmp, "slot")
    os.makedirs(slot)
    with pytest.raises(InvalidParameter, match="failed to read the build context"):
        receive(data[:len(data) // 2 + 100], slot, None)


def _first_upload_kept(tmp: str) -> tuple[str, str, bytes, ContextIndex]:
    """A slot that received FIRST with its stream kept: (slot, kept stream path, FIRST's tar, its index)."""
    slot = os.path.join(tmp, "slot")
    os.makedirs(slot)
    kept = slot + ".tar"
    data = make_tar(FIRST)
    return slot, kept, data, receive_context(io.BytesIO(data), slot, None, kept)


def test_kept_stream_identical_upload_parses_nothing(tmp: str) -> None:
    slot, kept, data, first = _first_upload_kept(tmp)
    with open(kept, "rb") as f:
        assert f.read() == data  # the stream as the tar reader saw it
    snapshot = {rel: os.lstat(os.path.join(slot, rel)).st_mtime_ns for rel in tree(slot)}
    again = receive_context(io.BytesIO(data), slot, first, kept)
    assert again is first
    assert {rel: os.lstat(os.path.join(slot, rel)).st_mtime_ns for rel in tree(slot)} == snapshot


@pytest.mark.parametrize("change", ["second-upload", "one-byte", "shorter", "longer"])
def test_kept_stream_differing_upload_is_received_whole(tmp: str, change: str) -> None:
    slot, kept, data, first = _first_upload_kept(tmp)
    if change == "second-upload":
        new = make_tar(second_members())
    elif change == "one-byte":  # inside big.bin, far past the first read block
        at = data.index(dict((m[0], m) for m in FIRST)["app/data/big.bin"][2][:64]) + (2 << 20)
        new = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
    elif change == "shorter":
        new = make_tar([m for m in FIRST if m[0] != "retarget" and m[0] != "fifo"])
    else:
        new = make_tar([*FIRST, ("zz-last.txt", "file", b"appended", 0o644)])
    index = receive_context(io.BytesIO(new), slot, first, kept)
    ref, ref_index = fresh(new, tmp)
    assert tree(slot) == tree(ref)
    assert index.entries == ref_index.entries | {"": index.entries[""]}
    assert_index_matches_disk(slot, index, [".", "app", "app/data"])
    with open(kept, "rb") as f:
        assert f.read() == new


def test_failed_upload_drops_the_kept_stream(tmp: str) -> None:
    slot, kept, data, first = _first_upload_kept(tmp)
    broken = make_tar(second_members())
    with pytest.raises(InvalidParameter):
        receive_context(io.BytesIO(broken[:len(broken) // 2 + 100]), slot, first, kept)
    assert not os.path.exists(kept) and not os.path.exists(kept + ".tmp")
