"""Deterministic layer tars for COPY and ADD: entries sorted by path, one fixed mtime, explicit owners.

The same sources with the same flags always give the same bytes, hence the same diff ID and layer. Every
ancestor of a destination is written too, with the metadata it has in the image (or 0755 when new), so the
layer never changes a parent directory's mode the way an implicit directory would.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..util.tario import NEW_FILE_FLAGS, end_of_archive, header_bytes, open_dir_path, pad

MTIME = 0  # normalised timestamp of every entry a COPY/ADD writes


@dataclass
class Entry:
    path: str  # inside the image, no leading "/"
    kind: str  # "dir" | "file" | "symlink" | "bytes"
    mode: int
    uid: int
    gid: int
    source: str = ""  # disk path of a file
    data: bytes = b""
    linkname: str = ""
    mtime: int = MTIME


class LayerBuilder:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, e: Entry) -> None:
        old = self.entries.get(e.path)
        if old is not None and old.kind == "dir" and e.kind == "dir":
            return  # the first word on a directory wins (ancestors are added before contents)
        self.entries[e.path] = e

    def add_dir(self, path: str, mode: int, uid: int, gid: int, mtime: int = MTIME) -> None:
        self.add(Entry(path, "dir", mode, uid, gid, mtime=mtime))

    def __len__(self) -> int:
        return len(self.entries)

    def _ordered(self) -> list[Entry]:
        return [self.entries[p] for p in sorted(self.entries, key=lambda p: p.split("/"))]

    def chunks(self) -> Iterator[bytes]:
        """The layer tar."""
        for e in self._ordered():
            if e.kind == "file":
                with open(e.source, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    yield _header(e, size)
                    yield from _content(f, size)
                    yield pad(size)
            else:
                yield _header(e, len(e.data))
                if e.kind == "bytes":
                    yield e.data
                    yield pad(len(e.data))
        yield end_of_archive()

    def written(self, root: str) -> Iterator[bytes]:
        """The layer tar (the same bytes as ``chunks``) while the tree it describes is made under ``root``, as
        extracting it would make it (owners, modes, mtimes, directory times last): a COPY goes straight into
        its layer directory in one read of each source, with no tar parsed back."""
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds: dict[tuple[str, ...], int] = {(): root_fd}
        dir_times: list[tuple[list[str], int]] = []

        def parent_fd(parts: list[str]) -> int:
            key = tuple(parts)
            fd = fds.get(key)
            if fd is None:
                if len(fds) > 256:  # a wide tree: keep the number of open directories bounded
                    for k in [k for k in fds if k]:
                        os.close(fds.pop(k))
                fd = fds[key] = open_dir_path(root_fd, parts, create=True)
            return fd

        try:
            for e in self._ordered():
                parts = [p for p in e.path.split("/") if p]
                if e.kind == "dir":
                    yield _header(e, 0)
                    if parts:
                        dfd = parent_fd(parts[:-1])
                        try:
                            os.mkdir(parts[-1], 0o700, dir_fd=dfd)
                        except FileExistsError:
                            pass
                        fd = parent_fd(parts)
                        dir_times.append((parts, e.mtime))
                    else:
                        fd = root_fd
                    os.fchown(fd, e.uid, e.gid)
                    os.fchmod(fd, e.mode & 0o7777)
                    continue
                dfd = parent_fd(parts[:-1])
                base = parts[-1]
                if e.kind == "symlink":
                    yield _header(e, 0)
                    os.symlink(e.linkname, base, dir_fd=dfd)
                    os.chown(base, e.uid, e.gid, dir_fd=dfd, follow_symlinks=False)
                    os.utime(base, (e.mtime, e.mtime), dir_fd=dfd, follow_symlinks=False)
                    continue
                fd = os.open(base, NEW_FILE_FLAGS, 0o600, dir_fd=dfd)
                try:
                    if e.kind == "bytes":
                        yield _header(e, len(e.data))
                        os.write(fd, e.data)
                        yield e.data
                        yield pad(len(e.data))
                    else:
                        with open(e.source, "rb") as f:
                            size = os.fstat(f.fileno()).st_size
                            yield _header(e, size)
                            for data in _content(f, size):
                                os.write(fd, data)
                                yield data
                            yield pad(size)
                    os.fchown(fd, e.uid, e.gid)
                    os.fchmod(fd, e.mode & 0o7777)
                    os.utime(fd, (e.mtime, e.mtime))
                finally:
                    os.close(fd)
            yield end_of_archive()
            for parts, mtime in sorted(dir_times, key=lambda x: -len(x[0])):
                os.utime(parts[-1], (mtime, mtime), dir_fd=parent_fd(parts[:-1]), follow_symlinks=False)
        finally:
            for fd in fds.values():
                os.close(fd)


_TYPES = {"dir": b"5", "symlink": b"2", "file": b"0", "bytes": b"0"}
_OCT7, _OCT11 = 8 ** 7, 8 ** 11


def _header(e: Entry, size: int) -> bytes:
    name = e.path + "/" if e.kind == "dir" else e.path
    link = e.linkname if e.kind == "symlink" else ""
    if e.kind in ("dir", "symlink"):
        size = 0
    fast = ustar_header(name, e.mode & 0o7777, e.uid, e.gid, size, e.mtime, _TYPES[e.kind], link)
    if fast is not None:
        return fast
    ti = tarfile.TarInfo(name)
    ti.mode = e.mode & 0o7777
    ti.uid, ti.gid = e.uid, e.gid
    ti.uname = ti.gname = ""
    ti.mtime = e.mtime
    ti.type = _TYPES[e.kind]
    ti.linkname = link
    ti.size = size
    return header_bytes(ti)


def ustar_header(name: str, mode: int, uid: int, gid: int, size: int, mtime: int, typ: bytes,
                 linkname: str) -> bytes | None:
    """The header ``tarfile`` writes in PAX format for a member that needs no PAX record (ASCII names up to 100
    bytes, numbers that fit in octal), built directly: ``tarfile``'s general path costs more than the rest of a
    COPY of small files. None when a PAX record is needed (the caller then asks ``tarfile``)."""
    if len(name) > 100 or len(linkname) > 100 or not (name.isascii() and linkname.isascii()):
        return None
    if not (0 <= uid < _OCT7 and 0 <= gid < _OCT7 and 0 <= size < _OCT11 and 0 <= mtime < _OCT11):
        return None
    head = (name.encode().ljust(100, b"\0") + b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode, uid, gid, size, mtime))
    tail = (typ + linkname.encode().ljust(100, b"\0") + b"ustar\x0000" + b"\0" * 64
            + b"\0" * 183)  # no owner names, no device numbers, no prefix
    chksum = sum(head) + sum(tail) + 8 * 32  # the checksum field counts as eight spaces
    return head + b"%06o\0 " % chksum + tail


def _content(f: BinaryIO, size: int) -> Iterator[bytes]:
    """A file's ``size`` bytes (zeros if it shrank meanwhile, so the tar stays well-formed)."""
    left = size
    while left > 0:
        data = f.read(min(1 << 20, left)) or b"\0" * min(1 << 20, left)
        yield data
        left -= len(data)


def entry_from_stat(path: str, disk: str, st: os.stat_result, owner: tuple[int, int] | None,
                    chmod: int | None, keep_mtime: bool = False) -> Entry | None:
    uid, gid = owner if owner is not None else (0, 0)
    mtime = int(st.st_mtime) if keep_mtime else MTIME
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return Entry(path, "dir", chmod if chmod is not None else mode, uid, gid, mtime=mtime)
    if stat.S_ISLNK(st.st_mode):
        return Entry(path, "symlink", 0o777, uid, gid, linkname=os.readlink(disk), mtime=mtime)
    if stat.S_ISREG(st.st_mode):
        return Entry(path, "file", chmod if chmod is not None else mode, uid, gid, source=disk, mtime=mtime)
    return None
