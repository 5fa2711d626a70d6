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

from ..util.tario import end_of_archive, header_bytes, pad

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

    def chunks(self) -> Iterator[bytes]:
        for path in sorted(self.entries, key=lambda p: p.split("/")):
            e = self.entries[path]
            ti = tarfile.TarInfo(path)
            ti.mode = e.mode & 0o7777
            ti.uid, ti.gid = e.uid, e.gid
            ti.uname = ti.gname = ""
            ti.mtime = e.mtime
            if e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.name = path + "/"
                yield header_bytes(ti)
            elif e.kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e.linkname
                yield header_bytes(ti)
            elif e.kind == "bytes":
                ti.size = len(e.data)
                yield header_bytes(ti)
                yield e.data
                yield pad(len(e.data))
            else:
                with open(e.source, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    ti.size = size
                    yield header_bytes(ti)
                    left = size
                    while left > 0:
                        data = f.read(min(1 << 20, left)) or b"\0" * min(1 << 20, left)
                        yield data
                        left -= len(data)
                    yield pad(size)
        yield end_of_archive()


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
