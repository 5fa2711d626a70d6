"""An uploaded build context (the classic protocol's tar) received into its directory as the bytes arrive.

A context slot keeps the previous upload of the same build, with the index of what that upload left there
(path -> type and mode, size, content digest or link target). A no-change rebuild through the docker CLI
then costs one pass over the stream and no disk access: each file's bytes are hashed straight out of the
receive buffer (hashlib releases the GIL, so this runs beside the rest) and matched against the index;
nothing is written. A file whose content differs is written once, from the bytes already hashed. Hashing
costs less here than opening and reading the old copy of 5000 small files to compare them. The index that comes out describes the directory exactly,
so the build's cache checksums come from it, with no second walk or read of the context. Timestamps are
never compared: a touched file with the same bytes is unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import stat
from typing import IO, Any

from ..errors import InvalidParameter
from ..storage.tarsafe import decompressed
from ..util.tario import open_dir_path
from .context import file_digest, remember_digest
from .context_index import ContextIndex, Entry
from .tarstream import Member, Source, TarFormatError, TarReader

_SMALL = 8 << 20  # files up to this size are compared with their old copy; larger ones are written again
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_OLD = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def receive_context(stream: IO[bytes], dest: str, previous: ContextIndex | None, kept: str = "") -> ContextIndex:
    """Unpack an uploaded context (plain, gzip, bzip2 or xz) into ``dest`` without following any symlink.

    ``previous`` is the index of what ``dest`` holds (None: unknown, e.g. after a daemon restart; then what is
    there is looked at on disk). Whatever the new tar lacks is removed. ``kept``: where the tar stream of the
    upload that made ``previous`` is kept (and this one's is kept, for the next upload): while the new stream
    matches it byte for byte nothing is parsed or hashed at all, and a stream that matches to its end is the
    same context, whose index is ``previous`` (the docker CLI tars an unchanged directory to the same bytes)."""
    raw = decompressed(stream)
    src: Source = raw
    magic = raw.peek(6) if getattr(raw, "peek", None) is not None else b""
    if magic.startswith(b"BZh"):
        import bz2

        src = bz2.BZ2File(raw)
    elif magic.startswith(b"\xfd7zXZ\x00"):
        import lzma

        src = lzma.LZMAFile(raw)
    if kept and previous is not None:
        try:
            old = open(kept, "rb")  # noqa: SIM115 - closed by _Replay or below
        except FileNotFoundError:
            pass
        else:
            replay = _compare(src, old)
            if replay is None:
                return previous
            src = replay
    elif kept:
        _unlink(kept)
    tmp = kept + ".tmp" if kept else ""
    copy = _Copy(src, tmp) if tmp else src
    rx = _Receiver(dest, previous)
    done = False
    try:
        rx.run(TarReader(copy))
        done = True
    except TarFormatError as e:
        raise InvalidParameter(f"failed to read the build context: {e}") from None
    finally:
        rx.close()
        if isinstance(copy, _Copy):
            copy.close()
        if isinstance(src, _Replay):
            src.close()
        if tmp and not done:
            _unlink(tmp)
            _unlink(kept)
    if tmp:
        os.replace(tmp, kept)
    return ContextIndex(rx.index)


_BLOCK = 1 << 20


def _compare(src: Source, old: io.BufferedReader) -> _Replay | None:
    """Read the upload against the kept stream. None: the same bytes to the end (``old`` is closed). Otherwise a
    reader that gives the whole new stream: the kept bytes that matched, then what was read and the rest."""
    new = bytearray(_BLOCK)
    kept = bytearray(_BLOCK)
    view = memoryview(new)
    offset = 0
    while True:
        n = src.readinto(view) or 0
        if n == 0:
            if old.read(1):
                break  # the new stream is shorter
            old.close()
            return None
        k = old.readinto(memoryview(kept)[:n]) or 0
        if k != n or kept[:n] != view[:n]:
            break
        offset += n
    old.seek(0)
    return _Replay(old, offset, bytes(view[:n]), src)


class _Replay:
    """``length`` bytes of the kept stream, then ``head``, then the rest of the upload."""

    def __init__(self, old: io.BufferedReader, length: int, head: bytes, rest: Source) -> None:
        self.old = old
        self.left = length
        self.head = head
        self.rest = rest

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self.left:
            n = self.old.readinto(view[:min(len(view), self.left)]) or 0
            if n == 0:
                raise TarFormatError("the kept context stream is shorter than recorded")
            self.left -= n
            return n
        if self.head:
            k = min(len(view), len(self.head))
            view[:k] = self.head[:k]
            self.head = self.head[k:]
            return k
        return self.rest.readinto(view) or 0

    def close(self) -> None:
        self.old.close()


class _Copy:
    """Passes the stream through while keeping a copy in ``path`` (the next upload is compared with it)."""

    def __init__(self, src: Source, path: str) -> None:
        self.src = src
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def readinto(self, b: Any) -> int:
        n = self.src.readinto(b) or 0
        if n:
            _write_all(self.fd, memoryview(b).cast("B")[:n])
        return n

    def close(self) -> None:
        os.close(self.fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _Receiver:
    def __init__(self, dest: str, previous: ContextIndex | None) -> None:
        self.dest = dest
        self.prev = previous.entries if previous is not None else {}
        self.known = previous is not None
        self.root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.fresh = not self.known and not os.listdir(self.root_fd)
        self.dir_fds: dict[str, int] = {}
        self.index: dict[str, Entry] = {}
        self.implicit: list[str] = []  # parents made without an entry of their own (mode read at the end)
        self.dir_modes: list[tuple[str, int]] = []

    def close(self) -> None:
        for fd in self.dir_fds.values():
            os.close(fd)
        os.close(self.root_fd)

    def parent_fd(self, parts: list[str]) -> int:
        key = "/".join(parts)
        fd = self.dir_fds.get(key)
        if fd is None:
            for k in range(1, len(parts) + 1):
                p = "/".join(parts[:k])
                if p not in self.index:  # a parent the tar did not list (yet): its mode is read at the end
                    self.implicit.append(p)
                    self.index[p] = Entry(stat.S_IFDIR, 0, "")
            fd = self.dir_fds[key] = open_dir_path(self.root_fd, parts, create=True)
        return fd

    def current(self, rel: str, parent: int, base: str) -> Entry | None:
        """What is at ``rel`` now: from this upload (a repeated name), the previous index, or the disk."""
        e = self.index.get(rel)
        if e is not None or self.fresh:
            return e
        if self.known:
            return self.prev.get(rel)
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode):
            return Entry(st.st_mode, st.st_size, file_digest(f"/proc/self/fd/{parent}/{base}", st))
        if stat.S_ISLNK(st.st_mode):
            return Entry(st.st_mode, 0, os.readlink(base, dir_fd=parent))
        return Entry(st.st_mode, st.st_size, "")

    def run(self, reader: TarReader) -> None:
        for m in reader:
            parts = [p for p in posixpath.normpath(m.name.lstrip("/")).split("/") if p not in ("", ".")]
            if not parts or ".." in parts:
                continue
            if len(self.dir_fds) > 512:  # between members only: no fd in use is closed
                for old in self.dir_fds.values():
                    os.close(old)
                self.dir_fds.clear()
            parent = self.parent_fd(parts[:-1])
            rel = "/".join(parts)
            base = parts[-1]
            cur = self.current(rel, parent, base)
            if m.type in (b"0", b"7"):
                self.index[rel] = self.file(reader, m, parent, base, rel, cur)
            elif m.type == b"5":
                if cur is None or not stat.S_ISDIR(cur.mode):
                    if cur is not None:
                        self.remove(parent, base, rel)
                    os.mkdir(base, 0o700, dir_fd=parent)
                    cur = None
                if cur is None or stat.S_IMODE(cur.mode) != m.mode:
                    self.dir_modes.append((rel, m.mode))
                self.index[rel] = Entry(stat.S_IFDIR | m.mode, 0, "")
                if rel in self.implicit:
                    self.implicit.remove(rel)
            elif m.type == b"2":
                if cur is None or not stat.S_ISLNK(cur.mode) or cur.extra != m.linkname:
                    if cur is not None:
                        self.remove(parent, base, rel)
                    os.symlink(m.linkname, base, dir_fd=parent)
                self.index[rel] = Entry(stat.S_IFLNK | 0o777, 0, m.linkname)
            elif m.type == b"1":
                target = [p for p in posixpath.normpath(m.linkname.lstrip("/")).split("/") if p]
                linked = self.index.get("/".join(target))
                if ".." in target or not target or linked is None or not stat.S_ISREG(linked.mode):
                    if cur is not None:
                        self.remove(parent, base, rel)
                    continue
                tdir = self.parent_fd(target[:-1])
                if cur is None or not _same_inode(parent, base, tdir, target[-1]):
                    if cur is not None:
                        self.remove(parent, base, rel)
                    os.link(target[-1], base, src_dir_fd=tdir, dst_dir_fd=parent, follow_symlinks=False)
                self.index[rel] = linked
            elif cur is not None:  # devices and fifos are not made in a context: nothing stays at their path
                self.remove(parent, base, rel)
        for rel, mode in reversed(self.dir_modes):  # deepest first, after their contents were written
            try:
                fd = open_dir_path(self.root_fd, rel.split("/"))
            except OSError:
                continue  # replaced by a later member
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        for rel in self.implicit:
            parts = rel.split("/")
            try:
                fd = open_dir_path(self.root_fd, parts)
            except OSError:
                self.index.pop(rel, None)
                continue
            try:
                self.index[rel] = Entry(os.fstat(fd).st_mode, 0, "")
            finally:
                os.close(fd)
        self.remove_stale()
        self.index[""] = Entry(os.fstat(self.root_fd).st_mode, 0, "")

    def file(self, reader: TarReader, m: Member, parent: int, base: str, rel: str, cur: Entry | None) -> Entry:
        if cur is not None and stat.S_ISREG(cur.mode) and cur.size == m.size and m.size <= _SMALL:
            piece = reader.view(m.size)
            held: memoryview | bytearray = piece
            if len(piece) < m.size:  # spread over several reads: gathered (at most _SMALL bytes)
                held = bytearray(piece)
                while len(held) < m.size:
                    more = reader.view(m.size - len(held))
                    if not more:
                        raise TarFormatError("unexpected end of data")
                    held += more
            digest = hashlib.sha256(held).hexdigest()
            if digest == cur.extra:  # the same bytes: nothing is written
                if stat.S_IMODE(cur.mode) != m.mode:
                    fd = os.open(base, _OPEN_OLD, dir_fd=parent)
                    try:
                        os.fchmod(fd, m.mode)
                    finally:
                        os.close(fd)
                return Entry(stat.S_IFREG | m.mode, m.size, digest)
            self.remove(parent, base, rel)
            return self.write(reader, m, parent, base, held)
        if cur is not None:
            self.remove(parent, base, rel)
        return self.write(reader, m, parent, base, b"")

    def write(self, reader: TarReader, m: Member, parent: int, base: str,
              head: bytes | bytearray | memoryview) -> Entry:
        """A new file from ``head`` (bytes already taken from the member) and the rest of the member, hashed
        as it is written."""
        try:
            fd = os.open(base, _CREATE, 0o600, dir_fd=parent)
        except FileExistsError:  # not what the index said was there
            self.remove(parent, base, "")
            fd = os.open(base, _CREATE, 0o600, dir_fd=parent)
        try:
            h = hashlib.sha256(head)
            if head:
                _write_all(fd, memoryview(head).cast("B"))
            while piece := reader.view(1 << 20):
                h.update(piece)
                _write_all(fd, piece)
            os.fchmod(fd, m.mode)
            digest = h.hexdigest()
            remember_digest(os.fstat(fd), digest)  # found by stat after a daemon restart, when no index is kept
        finally:
            os.close(fd)
        return Entry(stat.S_IFREG | m.mode, m.size, digest)

    def remove(self, parent: int, base: str, rel: str) -> None:
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if rel:
                for key in [k for k in self.dir_fds if k == rel or k.startswith(rel + "/")]:
                    os.close(self.dir_fds.pop(key))
            shutil.rmtree(os.path.join(f"/proc/self/fd/{parent}", base))
        else:
            os.unlink(base, dir_fd=parent)

    def remove_stale(self) -> None:
        """Whatever the directory held that this upload did not name."""
        if self.fresh:
            return
        if self.known:
            stale = [k for k in self.prev if k and k not in self.index]
        else:
            stale = []
            for dirpath, dirnames, filenames in os.walk(self.dest):
                rel_dir = os.path.relpath(dirpath, self.dest)
                for name in dirnames + filenames:
                    stale.append(name if rel_dir == "." else f"{rel_dir}/{name}")
            stale = [k for k in stale if k not in self.index]
        for rel in sorted(stale, key=lambda k: k.count("/")):  # parents first; their contents go with them
            parts = rel.split("/")
            try:
                parent = open_dir_path(self.root_fd, parts[:-1])  # never through a symlink
            except OSError:
                continue  # its parent is gone (removed just before) or is no longer a directory
            try:
                self.remove(parent, parts[-1], "")
            finally:
                os.close(parent)


def _same_inode(dfd: int, name: str, tdfd: int, tname: str) -> bool:
    try:
        a = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        b = os.stat(tname, dir_fd=tdfd, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]
