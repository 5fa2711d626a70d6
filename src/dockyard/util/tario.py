"""Tar streaming and descriptor-relative file helpers shared by layer extraction, `docker cp` on the engine
side and the cp command on the client side (which may import util only, so these live here).

Writing: tar entries are generated as byte chunks (header, content, padding) so archives stream without
temp files. Reading back: every directory is opened one component at a time with ``O_NOFOLLOW`` relative to
a directory fd, so no symlink can redirect a write outside the tree being filled.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator

CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


# -- writing tars -----------------------------------------------------------------------------------------
def pad(size: int) -> bytes:
    """Zeros completing a member's last 512-byte block."""
    rem = size % tarfile.BLOCKSIZE
    return b"\0" * (tarfile.BLOCKSIZE - rem) if rem else b""


def header_bytes(ti: tarfile.TarInfo) -> bytes:
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def end_of_archive() -> bytes:
    return b"\0" * (tarfile.BLOCKSIZE * 2)


def tarinfo_from_stat(arcname: str, st: os.stat_result, hardlinks: dict[tuple[int, int], str],
                      readlink: Callable[[], str]) -> tarfile.TarInfo | None:
    """The header for a file as lstat saw it; None for sockets (docker's archiver skips them).

    A second name of a multiply linked file becomes a hard link to the first (``hardlinks`` remembers them);
    a directory's name ends in "/". ``readlink`` is called for symlinks only.
    """
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = int(st.st_mtime)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in hardlinks:
            ti.type, ti.linkname = tarfile.LNKTYPE, hardlinks[key]
            return ti
        if st.st_nlink > 1:
            hardlinks[key] = arcname
        ti.size = st.st_size
    elif stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
        ti.name = arcname.rstrip("/") + "/"
    elif stat.S_ISLNK(mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, readlink()
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
    else:
        return None
    return ti


def file_entry_chunks(ti: tarfile.TarInfo, read: Callable[[int], bytes], chunk: int = CHUNK) -> Iterator[bytes]:
    """A regular-file member: header, ``ti.size`` bytes from ``read``, padding.

    A file that shrinks while it is read is padded with zeros so the archive stays valid.
    """
    yield header_bytes(ti)
    left = ti.size
    while left > 0:
        data = read(min(chunk, left)) or b"\0" * min(chunk, left)
        yield data
        left -= len(data)
    yield pad(ti.size)


def bytes_entry_chunks(ti: tarfile.TarInfo, data: bytes) -> Iterator[bytes]:
    ti.size = len(data)
    yield header_bytes(ti)
    yield data
    yield pad(len(data))


class ChunkReader:
    """A file-like ``read(n)`` over an iterator of byte chunks (a tar being generated or received).

    Reads gather small chunks up to ``n`` bytes (so a stream of 512-byte headers is sent in large pieces);
    ``total`` counts the bytes handed out (cp's "Successfully copied" figure).
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self._pos = 0
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            data = self._buf[self._pos:] + b"".join(self._it)
            self._buf, self._pos = b"", 0
        else:
            if len(self._buf) - self._pos < n:
                parts = [self._buf[self._pos:]]
                have = len(parts[0])
                for piece in self._it:
                    parts.append(piece)
                    have += len(piece)
                    if have >= n:
                        break
                self._buf, self._pos = b"".join(parts), 0
            data = self._buf[self._pos:self._pos + n]
            self._pos += len(data)
        self.total += len(data)
        return data


# -- reading tars into a tree, by directory fd ------------------------------------------------------------
def entry_parts(name: str) -> list[str]:
    """An entry name's components without empty and "." ones (callers refuse ".." and absolute names)."""
    return [p for p in name.split("/") if p not in ("", ".")]


class BlockedPath(OSError):
    """A component on the way to a directory is a symlink or not a directory; ``filename`` is the path to it."""


def open_dir_path(root_fd: int, parts: list[str], create: bool = False,
                  mount_source: Callable[[int], str | None] | None = None) -> int:
    """An fd of directory ``parts`` below ``root_fd``, never following a symlink (raises BlockedPath).

    With ``create``, missing directories are made (0755). ``mount_source(i)`` may name a host directory that
    stands for ``parts[:i + 1]`` (a bind mount), which is opened instead.
    """
    fd = os.dup(root_fd)
    try:
        for i, comp in enumerate(parts):
            source = mount_source(i) if mount_source is not None else None
            if source is not None:
                nfd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            else:
                try:
                    nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise BlockedPath(e.errno, e.strerror, "/".join(parts[: i + 1])) from None
                    raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def rmtree_at(dfd: int, name: str) -> None:
    """Remove directory ``name`` below ``dfd`` and all it holds, without following symlinks."""
    fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
    try:
        for child in os.listdir(fd):
            if stat.S_ISDIR(os.stat(child, dir_fd=fd, follow_symlinks=False).st_mode):
                rmtree_at(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dfd)


def remove_existing(dfd: int, name: str, keep_dir: bool) -> bool:
    """Clear the way for a new entry ``name``: unlink a file, remove a directory unless ``keep_dir``.
    True when something was removed."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return False
        rmtree_at(dfd, name)
    else:
        os.unlink(name, dir_fd=dfd)
    return True


def apply_meta(fd: int, ti: tarfile.TarInfo, owner: tuple[int, int]) -> None:
    """Owner, permission bits and the SCHILY.xattr.* records of a member, on its open fd."""
    os.fchown(fd, *owner)
    os.fchmod(fd, ti.mode & 0o7777)
    for key, value in (ti.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(fd, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"))
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise


def copy_member(tf: tarfile.TarFile, ti: tarfile.TarInfo, fd: int, chunk: int = CHUNK) -> bool:
    """Write a regular member's content to ``fd``; False when the archive ends before it does."""
    src = tf.extractfile(ti)
    left = ti.size
    while left > 0 and src is not None:
        data = src.read(min(chunk, left))
        if not data:
            return False
        os.write(fd, data)  # regular files: short writes only on ENOSPC, which raises
        left -= len(data)
    return True


def make_special(ti: tarfile.TarInfo, dfd: int, base: str, owner: tuple[int, int]) -> None:
    """Create a symlink, device or FIFO member ``base`` below ``dfd`` with its owner, mode and mtime."""
    if ti.issym():
        os.symlink(ti.linkname, base, dir_fd=dfd)
    else:
        kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK if ti.isblk() else stat.S_IFIFO
        os.mknod(base, kind | (ti.mode & 0o7777), os.makedev(ti.devmajor, ti.devminor), dir_fd=dfd)
    os.chown(base, *owner, dir_fd=dfd, follow_symlinks=False)
    if not ti.issym():
        os.chmod(base, ti.mode & 0o7777, dir_fd=dfd)
    os.utime(base, (ti.mtime, ti.mtime), dir_fd=dfd, follow_symlinks=False)


def make_dir(ti: tarfile.TarInfo, dfd: int, base: str, owner: tuple[int, int]) -> None:
    """Create (or keep) directory member ``base`` below ``dfd`` and give it the member's owner, mode, xattrs."""
    remove_existing(dfd, base, keep_dir=True)
    try:
        os.mkdir(base, 0o700, dir_fd=dfd)
    except FileExistsError:
        pass
    fd = os.open(base, DIR_FLAGS, dir_fd=dfd)
    try:
        apply_meta(fd, ti, owner)
    finally:
        os.close(fd)


def make_file(tf: tarfile.TarFile, ti: tarfile.TarInfo, dfd: int, base: str, owner: tuple[int, int],
              copy: Callable[[int], bool] | None = None) -> bool:
    """Create regular member ``base`` below ``dfd`` (never through a symlink) with its content, owner, mode,
    xattrs and mtime; False when the archive ends before the content does. ``copy(fd)`` writes the content
    instead of reading it through ``tf.extractfile`` (a caller with the raw stream at hand)."""
    fd = os.open(base, NEW_FILE_FLAGS, 0o600, dir_fd=dfd)
    try:
        if not (copy(fd) if copy is not None else copy_member(tf, ti, fd)):
            return False
        apply_meta(fd, ti, owner)
        os.utime(fd, (ti.mtime, ti.mtime))
        return True
    finally:
        os.close(fd)
