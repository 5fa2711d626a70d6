"""A layer tar kept as its unpacked files plus the tar's other bytes, so the tar needs no copy of its own.

Docker keeps a pulled layer as the unpacked tree and "tar-split" metadata, and rebuilds the very tar (same
diff ID) for ``save`` and ``push``. Here, as a layer streams through the extractor, every uncompressed byte
that is not a regular file's content (headers, PAX records, padding, the end blocks, anything after them) is
recorded verbatim, and each file's content is recorded as a reference (its path in the layer, its size). The
record is a zstd stream of:

    b"R" <u32 length> <bytes>            raw tar bytes
    b"F" <u64 size> <u16 length> <path>  ``size`` content bytes read from ``path`` below the layer's root

:func:`tar_chunks` replays it against the unpacked tree and checks the diff ID as the bytes go by. A layer
whose tar cannot be replayed from its tree (a later entry replaces or removes a file whose content was
recorded: a duplicate name, a whiteout of a file of the same layer, a directory turned into a file) raises
:class:`SplitConflict` while it is extracted, and the caller keeps the tar itself instead.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from ..util.tario import ChunkReader, open_dir_path

CHUNK = 1 << 20
SPLIT_NAME = "tar-split.zst"
SIZE_NAME = "tar-size"


class SplitConflict(Exception):
    """A later entry of the layer removes content recorded by reference: this tar cannot be replayed."""


class TarSplitMismatch(Exception):
    """The tar replayed from a layer's tree does not have the layer's diff ID (its files were changed)."""


class SplitRecorder:
    """Fed every uncompressed byte in order (:meth:`feed`); told by the extractor where file contents lie."""

    def __init__(self, out: BinaryIO) -> None:
        self._z = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)
        self._pending: list[bytes] = []
        self._pending_start = 0  # stream offset of the first pending byte
        self._pending_len = 0
        self._skip_until = 0  # bytes before this offset are content recorded by reference
        self._pos = 0
        self._contents: set[tuple[str, ...]] = set()
        self._ancestors: set[tuple[str, ...]] = set()

    def feed(self, data: bytes) -> None:
        start = self._pos
        self._pos += len(data)
        if self._pos <= self._skip_until:
            return
        if start < self._skip_until:
            data = data[self._skip_until - start:]
            start = self._skip_until
        if not self._pending:
            self._pending_start = start
        self._pending.append(data)
        self._pending_len += len(data)

    def _raw(self, upto: int) -> None:
        """Write pending bytes below stream offset ``upto`` as a raw record; keep the rest pending."""
        if upto <= self._pending_start:
            return
        buf = b"".join(self._pending)
        cut = upto - self._pending_start
        head, rest = buf[:cut], buf[cut:]
        if head:
            self._z.write(b"R" + struct.pack(">I", len(head)) + head)
        self._pending = [rest] if rest else []
        self._pending_start = upto
        self._pending_len = len(rest)

    def touch(self, parts: list[str], is_dir: bool) -> None:
        """An entry at ``parts`` is about to be made: refuse the split when it removes recorded content."""
        key = tuple(parts)
        if key in self._contents or (not is_dir and key in self._ancestors):
            raise SplitConflict("/".join(parts))

    def content(self, offset: int, size: int, parts: list[str]) -> None:
        """Stream bytes ``[offset, offset + size)`` are the content of the regular file at ``parts``."""
        if size <= 0:
            return
        self._raw(offset)
        # drop the pending bytes that are this file's content; later ones are skipped as they arrive
        end = offset + size
        if self._pending:
            buf = b"".join(self._pending)
            keep = buf[max(0, end - self._pending_start):]
            self._pending = [keep] if keep else []
            self._pending_len = len(keep)
        self._pending_start = max(end, self._pending_start)
        self._skip_until = end
        path = "/".join(parts).encode("utf-8", "surrogateescape")
        self._z.write(b"F" + struct.pack(">QH", size, len(path)) + path)
        key = tuple(parts)
        self._contents.add(key)
        for i in range(1, len(parts)):
            self._ancestors.add(key[:i])

    def finish(self) -> None:
        self._raw(self._pos)
        self._z.flush(zstandard.FLUSH_FRAME)
        self._z.close()


def _read_exact(z: zstandard.ZstdDecompressionReader, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        more = z.read(n - len(out))
        if not more:
            raise TarSplitMismatch("tar-split record truncated")
        out += more
    return bytes(out)


def _file_chunks(root_fd: int, path: str, size: int) -> Iterator[bytes]:
    parts = path.split("/")
    dfd = open_dir_path(root_fd, parts[:-1])
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        left = size
        while left:
            data = os.read(fd, min(CHUNK, left))
            if not data:
                raise TarSplitMismatch(f"{path} is shorter than the layer's tar says")
            left -= len(data)
            yield data
    finally:
        os.close(fd)


def tar_chunks(split_path: str, root: str, diff_id: str) -> Iterator[bytes]:
    """The layer's tar rebuilt from ``split_path`` and the tree at ``root``; raises
    :class:`TarSplitMismatch` instead of the last chunk when the bytes do not hash to ``diff_id`` (so a
    reader that stops at the tar's size still meets the check)."""
    sha = hashlib.sha256()
    held: bytes | None = None
    for chunk in _rebuilt_chunks(split_path, root, sha):
        if held is not None:
            yield held
        held = chunk
    if "sha256:" + sha.hexdigest() != diff_id:
        raise TarSplitMismatch(f"layer {diff_id} rebuilt from its files has another digest: its files changed")
    if held is not None:
        yield held


def _rebuilt_chunks(split_path: str, root: str, sha: hashlib._Hash) -> Iterator[bytes]:
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with open(split_path, "rb") as f:
            z = zstandard.ZstdDecompressor().stream_reader(f)
            pending = bytearray()
            while True:
                kind = z.read(1)
                if not kind:
                    break
                if kind == b"R":
                    (n,) = struct.unpack(">I", _read_exact(z, 4))
                    pending += _read_exact(z, n)
                    if len(pending) >= CHUNK:
                        sha.update(pending)
                        yield bytes(pending)
                        pending = bytearray()
                elif kind == b"F":
                    size, plen = struct.unpack(">QH", _read_exact(z, 10))
                    path = _read_exact(z, plen).decode("utf-8", "surrogateescape")
                    for data in _file_chunks(root_fd, path, size):
                        if len(data) < 64 << 10:  # small files join the raw bytes around them
                            pending += data
                            continue
                        if pending:
                            sha.update(pending)
                            yield bytes(pending)
                            pending = bytearray()
                        sha.update(data)
                        yield data
                else:
                    raise TarSplitMismatch(f"unknown tar-split record {kind!r}")
            if pending:
                sha.update(pending)
                yield bytes(pending)
    finally:
        os.close(root_fd)


class RebuiltTar(ChunkReader):
    """The rebuilt tar as a file to ``read()`` (and close: that stops the rebuild)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__(chunks)
        self._chunks = chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> RebuiltTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
