"""Layer tar extraction that no entry can escape, and layer tar creation from overlay upper dirs.

Extraction resolves every parent directory one component at a time with ``O_NOFOLLOW`` relative to
the layer root's directory fd, so a symlink planted by an earlier entry can never redirect a later
write, hard link or chmod outside the root. ``..`` components and absolute names are refused outright.
Docker's whiteouts are turned into overlay's form on the way in (``.wh.x`` → char device 0/0,
``.wh..wh..opq`` → ``trusted.overlay.opaque=y``) and back on the way out.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import zstandard

from ..errors import InvalidParameter
from ..util.tario import (
    BlockedPath,
    ChunkReader,
    apply_meta,
    bytes_entry_chunks,
    end_of_archive,
    entry_parts,
    header_bytes,
    make_dir,
    make_file,
    make_special,
    open_dir_path,
    remove_existing,
    tarinfo_from_stat,
)
from ..util.tario import file_entry_chunks as _file_entry_chunks
from .inflate import GzipReader
from .tarheader import FastTarInfo
from .tarsplit import SplitConflict, SplitRecorder

__all__ = ["ChunkReader", "ExtractStats", "HashingReader", "UnsafeArchive", "bytes_entry_chunks", "clean_entry",
           "compression_of", "decompressed", "end_of_archive", "extract_layer", "file_entry_chunks",
           "header_bytes", "tree_chunks"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
_DIR_CACHE = 64  # directory fds an extraction keeps open
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class UnsafeArchive(InvalidParameter):
    """An entry tried to leave the extraction root (or the archive is not a tar at all): HTTP 400."""


class _Peekable:
    """A reader whose first bytes can be inspected without consuming them (for magic sniffing)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.head = b""

    def peek(self, n: int) -> bytes:
        while len(self.head) < n:
            more = self.raw.read(n - len(self.head))
            if not more:
                break
            self.head += more
        return self.head[:n]

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.raw.read(n - len(data))
            return data
        return self.raw.read(n)

    def readinto(self, b: Any) -> int:
        """The peeked bytes first, then the raw stream's own ``readinto`` (no copy through this wrapper)."""
        view = memoryview(b)
        if self.head:
            k = min(len(view), len(self.head))
            view[:k] = self.head[:k]
            self.head = self.head[k:]
            return k
        return int(self.raw.readinto(view))  # type: ignore[attr-defined]


class HashingReader:
    """Passes bytes through while hashing them (the diff ID) and optionally copying them to a file."""

    def __init__(self, raw: Any, copy_to: BinaryIO | None = None, hashing: bool = True,
                 split: SplitRecorder | None = None) -> None:
        self.raw = raw
        self.hashing = hashing
        self.sha = hashlib.sha256()
        self.size = 0
        self.copy_to = copy_to
        self.split = split

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.raw.read(n)
        if data:
            if self.hashing:
                self.sha.update(data)
            self.size += len(data)
            if self.copy_to is not None:
                self.copy_to.write(data)
            if self.split is not None:
                self.split.feed(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


class ForwardCursor:
    """``read``/``tell``/forward ``seek`` over a stream, so ``tarfile`` can run in its seekable mode on a pipe.

    In stream mode (``r|``) tarfile pulls every byte through its own buffer, joining and slicing it again for
    each piece of a file's content (three copies of every byte, with the GIL held). In seekable mode a
    member's content is read straight from here in the sizes the extractor asks for. Headers are served from a
    small read-ahead buffer. A seek backwards (which tarfile never needs for a sequential walk) is refused.
    """

    _AHEAD = 64 << 10

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.pos = 0
        self._buf = b""
        self._off = 0

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self.pos:
            raise OSError(f"layer stream cannot seek back from {self.pos} to {pos}")
        left = pos - self.pos
        while left > 0:
            if not self.read(min(left, CHUNK)):
                break  # at the end: the next read says so
            left = pos - self.pos
        return self.pos

    def copy_to_fd(self, fd: int, offset: int, size: int) -> bool:
        """Write stream bytes ``[offset, offset + size)`` (a member's content) to ``fd`` in the pieces they arrive
        in: no joining, no copy through tarfile's file object. False when the stream ends first."""
        self.seek(offset)
        left = size
        while left > 0:
            have = len(self._buf) - self._off
            if have:
                k = min(have, left)
                piece = self._buf[self._off:self._off + k] if (self._off or k < have) else self._buf
                self._off += k
            else:
                piece = self._raw_read(min(left, CHUNK))
                if not piece:
                    return False
                if len(piece) > left:  # a reader that handed out more than asked: keep the surplus
                    piece, self._buf, self._off = piece[:left], piece, left
            os.write(fd, piece)  # regular files: short writes only on ENOSPC, which raises
            self.pos += len(piece)
            left -= len(piece)
        return True

    def _raw_read(self, n: int) -> bytes:
        data: bytes = self.raw.read(n)
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._buf[self._off:]]
            self._buf, self._off = b"", 0
            while chunk := self._raw_read(CHUNK):
                parts.append(chunk)
            data = b"".join(parts)
            self.pos += len(data)
            return data
        have = len(self._buf) - self._off
        if have >= n:  # a header from the read-ahead
            data = self._buf[self._off:self._off + n]
            self._off += n
        elif n >= self._AHEAD:  # file content: straight from the stream, in as few pieces as it comes
            parts = [self._buf[self._off:]] if have else []
            self._buf, self._off = b"", 0
            got = have
            while got < n:
                chunk = self._raw_read(n - got)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            if len(data) > n:  # a reader that handed out more than asked: keep the surplus
                data, self._buf = data[:n], data[n:]
        else:
            parts = [self._buf[self._off:]]
            got = have
            while got < n:
                chunk = self._raw_read(self._AHEAD)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
            buf = b"".join(parts)
            data, self._buf, self._off = buf[:n], buf, min(n, len(buf))
        self.pos += len(data)
        return data


def compression_of(head: bytes) -> str:
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompressed(stream: IO[bytes]) -> Any:
    """Wrap ``stream`` so reads yield the tar bytes whatever the compression (sniffed by magic)."""
    peek = _Peekable(stream)
    kind = compression_of(peek.peek(4))
    if kind == "gzip":
        return GzipReader(peek)  # type: ignore[arg-type]
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(peek, read_across_frames=True)  # type: ignore[arg-type]
    return peek


def clean_entry(name: str) -> list[str]:
    """Split an entry name into components, refusing anything that could climb out of the root."""
    if name.startswith("/"):
        raise UnsafeArchive(f"refusing archive entry with an absolute path: {name!r}")
    parts = entry_parts(name)
    if ".." in parts:
        raise UnsafeArchive(f"refusing archive entry that escapes the root: {name!r}")
    return parts


@dataclass
class ExtractStats:
    diff_id: str = ""
    tar_size: int = 0
    content_size: int = 0
    dir_times: list[tuple[list[str], float]] = field(default_factory=list)


class _Extractor:
    def __init__(self, root: str, whiteouts: str, split: SplitRecorder | None = None,
                 cursor: ForwardCursor | None = None) -> None:
        self.cursor = cursor
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.whiteouts = whiteouts  # "overlay": convert; "keep": plain files (save/load staging)
        self.split = split
        self.stats = ExtractStats()
        # open fds of the directories entries were last made in: most entries go where the previous one went,
        # so walking the path again (an open per component) is skipped. Any entry that removes something
        # drops them, so a cached fd never stands for a directory that was replaced.
        self._dirs: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        self._forget_dirs()
        os.close(self.root_fd)

    def _dir(self, parts: list[str]) -> int:
        key = tuple(parts)
        fd = self._dirs.get(key)
        if fd is None:
            if len(self._dirs) >= _DIR_CACHE:
                self._forget_dirs()
            fd = self._dirs[key] = self._open_dir(parts, create=True)
        return fd

    def _forget_dirs(self, keep: tuple[str, ...] | None = None) -> None:
        for key, fd in list(self._dirs.items()):
            if key != keep:
                os.close(fd)
                del self._dirs[key]

    def _open_dir(self, parts: list[str], create: bool) -> int:
        """The fd of directory ``parts`` under the root, never following a symlink on the way."""
        try:
            return open_dir_path(self.root_fd, parts, create)
        except BlockedPath:
            raise UnsafeArchive(
                f"refusing archive entry below a non-directory (symlink?) {'/'.join(parts)!r}") from None

    def entry(self, tf: tarfile.TarFile, ti: tarfile.TarInfo) -> None:
        parts = clean_entry(ti.name)
        if not parts:
            if ti.isdir():
                apply_meta(self.root_fd, ti, (ti.uid, ti.gid))
            return
        base = parts[-1]
        split = self.split
        if split is not None:
            split.touch(parts, ti.isdir())
            if ti.issparse():
                raise SplitConflict(f"sparse entry {ti.name!r}")
        here = tuple(parts[:-1])
        dfd = self._dir(parts[:-1])  # owned by the cache: not closed here
        if self.whiteouts == "overlay" and base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                os.setxattr(dfd, OPAQUE_XATTR, b"y")
            else:
                target = base[len(WHITEOUT_PREFIX):]
                if not target or target in (".", ".."):
                    raise UnsafeArchive(f"refusing malformed whiteout entry {ti.name!r}")
                if split is not None:
                    split.touch([*parts[:-1], target], False)
                if remove_existing(dfd, target, keep_dir=False):
                    self._forget_dirs(keep=here)
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
            return
        owner = (ti.uid, ti.gid)
        if ti.isdir():
            make_dir(ti, dfd, base, owner)
            self.stats.dir_times.append((parts, ti.mtime))
            return
        if ti.isreg():
            if split is not None:
                split.content(ti.offset_data, ti.size, parts)
            cur = self.cursor
            copy = None if cur is None or ti.sparse else (
                lambda fd: cur.copy_to_fd(fd, ti.offset_data, ti.size))
            try:  # the name is new (the common case): no look before the exclusive create
                made = make_file(tf, ti, dfd, base, owner, copy)
            except FileExistsError:
                if remove_existing(dfd, base, keep_dir=False):
                    self._forget_dirs(keep=here)
                made = make_file(tf, ti, dfd, base, owner, copy)
            if not made:
                raise UnsafeArchive(f"unexpected end of archive in {ti.name!r}")
            self.stats.content_size += ti.size
            return
        if remove_existing(dfd, base, keep_dir=False):
            self._forget_dirs(keep=here)
        if ti.islnk():
            lparts = clean_entry(ti.linkname)
            if not lparts:
                raise UnsafeArchive(f"refusing hard link to the root: {ti.name!r}")
            sfd = self._open_dir(lparts[:-1], create=False)
            try:
                st = os.stat(lparts[-1], dir_fd=sfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise UnsafeArchive(f"refusing hard link to a directory: {ti.name!r}")
                os.link(lparts[-1], base, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(sfd)
        elif ti.issym() or ti.ischr() or ti.isblk() or ti.isfifo():
            make_special(ti, dfd, base, owner)
        else:
            raise UnsafeArchive(f"unsupported archive entry type {ti.type!r} for {ti.name!r}")

    def finish(self) -> None:
        """Directory mtimes last (deepest first): creating children changes them."""
        for parts, mtime in sorted(self.stats.dir_times, key=lambda x: -len(x[0])):
            try:
                dfd = self._open_dir(parts[:-1], create=False)
            except (OSError, UnsafeArchive):
                continue  # a later entry replaced this directory (or a parent) with something else
            try:
                os.utime(parts[-1], (mtime, mtime), dir_fd=dfd, follow_symlinks=False)
            except OSError:
                pass
            finally:
                os.close(dfd)


def extract_layer(stream: IO[bytes], dest: str, copy_to: BinaryIO | None = None,
                  whiteouts: str = "overlay", hashing: bool = True,
                  split: SplitRecorder | None = None) -> ExtractStats:
    """Unpack a (possibly compressed) layer tar into the existing empty directory ``dest``.

    Returns the diff ID (sha256 of the uncompressed tar). ``copy_to`` receives the uncompressed
    tar bytes as they stream by, so the caller can keep the layer blob without a second read;
    ``split`` records them as tar-split metadata instead (raises ``SplitConflict`` when the tar cannot be
    rebuilt from the tree). The caller removes ``dest`` when this raises. ``hashing=False`` skips the
    digest (staging).
    """
    reader = HashingReader(decompressed(stream), copy_to, hashing, split)
    cursor = ForwardCursor(reader)
    ex = _Extractor(dest, whiteouts, split, cursor)
    try:
        try:
            with tarfile.open(fileobj=cursor, mode="r:", errorlevel=2,  # type: ignore[call-overload]
                              tarinfo=FastTarInfo) as tf:
                for ti in tf:
                    ex.entry(tf, ti)
        except tarfile.ReadError as e:
            if reader.size == 0:  # an empty stream is an empty layer
                pass
            else:
                raise UnsafeArchive(f"invalid tar archive: {e}") from None
        ex.finish()
        reader.drain()
        if split is not None:
            split.finish()
    finally:
        ex.close()
    ex.stats.diff_id = reader.digest()
    ex.stats.tar_size = reader.size
    return ex.stats


# ---------------------------------------------------------------------------------------------
# Creating tars


def _tarinfo_for(path: str, arcname: str, st: os.stat_result,
                 hardlinks: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    """The header for ``path`` with its extended attributes (overlay's own bookkeeping left out)."""
    ti = tarinfo_from_stat(arcname, st, hardlinks, lambda: os.readlink(path))
    if ti is None or ti.type in (tarfile.LNKTYPE, tarfile.SYMTYPE):
        return ti
    pax: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:
        if name.startswith("trusted.overlay."):  # overlay's own bookkeeping, not content
            continue
        if not name.startswith(("security.", "user.", "trusted.", "system.")):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        pax["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    if pax:
        ti.pax_headers = pax
    return ti


def file_entry_chunks(ti: tarfile.TarInfo, path: str) -> Iterator[bytes]:
    """A regular-file entry read from ``path``: header, content streamed in chunks, padding."""
    with open(path, "rb") as f:
        yield from _file_entry_chunks(ti, f.read)


def tree_chunks(root: str, overlay_whiteouts: bool, prefix: str = "") -> Iterator[bytes]:
    """Tar the tree under ``root`` (without the end-of-archive blocks), sorted for reproducibility.

    With ``overlay_whiteouts`` (an overlay upper dir), char devices 0/0 become ``.wh.<name>`` and
    opaque directories get a ``.wh..wh..opq`` entry — the layer form docker expects.
    """
    hardlinks: dict[tuple[int, int], str] = {}

    def walk(rel: str) -> Iterator[bytes]:
        full = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(full)):
            path = os.path.join(full, name)
            arc = prefix + (f"{rel}/{name}" if rel else name)
            st = os.lstat(path)
            if overlay_whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                wh = tarfile.TarInfo(prefix + (f"{rel}/" if rel else "") + WHITEOUT_PREFIX + name)
                wh.mtime = int(st.st_mtime)
                wh.mode = 0o644
                yield from bytes_entry_chunks(wh, b"")
                continue
            ti = _tarinfo_for(path, arc, st, hardlinks)
            if ti is None:
                continue
            if ti.type == tarfile.DIRTYPE:
                yield header_bytes(ti)
                if overlay_whiteouts and _is_opaque(path):
                    op = tarfile.TarInfo(f"{arc}/{OPAQUE_MARKER}")
                    op.mtime = int(st.st_mtime)
                    op.mode = 0o644
                    yield from bytes_entry_chunks(op, b"")
                yield from walk(f"{rel}/{name}" if rel else name)
            elif ti.type == tarfile.REGTYPE:
                yield from file_entry_chunks(ti, path)
            else:
                yield header_bytes(ti)

    yield from walk("")


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
