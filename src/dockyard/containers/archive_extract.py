"""Unpacking an uploaded archive into a container (PUT /containers/{id}/archive), refusing escapes up front.

The body is spooled to an unnamed temp file and walked twice: first against the container's filesystem — any
entry that is absolute, climbs with ``..``, or would be written through a symlink (one the archive made, or one
already in the container) refuses the whole archive before a byte is written — then for real, every parent
opened with ``O_NOFOLLOW`` through ``ContainerFS`` so a symlink swapped in meanwhile still cannot redirect a write.
"""

from __future__ import annotations

import bz2
import errno
import lzma
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from dockyard.containers.archive import ContainerFS, CopySession, not_found, parse_container_path
from dockyard.errors import Forbidden, InvalidParameter, SystemError_
from dockyard.storage.tarsafe import UnsafeArchive, clean_entry, decompressed
from dockyard.util.tario import (
    CHUNK,
    make_dir,
    make_file,
    make_special,
    remove_existing,
)

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService


def open_upload(stream: IO[bytes], spool_dir: str) -> IO[bytes]:
    """Spool the request body to an unnamed temp file (so it can be checked whole, then extracted)."""
    spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - returned to the caller, who closes it
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            spool.write(chunk)
        spool.seek(0)
        return spool
    except BaseException:
        spool.close()
        raise


def _tar_reader(spool: IO[bytes]) -> Any:
    """The uncompressed tar bytes: identity, gzip, zstd (via tarsafe), bzip2 or xz."""
    spool.seek(0)
    head = spool.read(6)
    spool.seek(0)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(spool)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(spool)
    return decompressed(spool)


def _entries(spool: IO[bytes]) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    try:
        with tarfile.open(fileobj=_tar_reader(spool), mode="r|", errorlevel=2) as tf:
            for ti in tf:
                yield tf, ti
    except (tarfile.ReadError, EOFError, OSError, lzma.LZMAError) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise
        raise InvalidParameter(f"invalid tar archive: {e}") from None


@dataclass
class ExtractOptions:
    no_overwrite_dir_non_dir: bool = False
    chown: tuple[int, int] | None = None  # copyUIDGID: everything owned by the container's user


def _check_plan(fs: ContainerFS, dest: list[str], spool: IO[bytes], opts: ExtractOptions) -> None:
    """Walk the archive against the filesystem and refuse it before anything is written."""
    kinds: dict[tuple[str, ...], bool] = {}  # what the archive itself makes: True = a directory

    def is_dir_on_way(rel: list[str], entry: str) -> None:
        for i in range(len(rel)):
            q = tuple(rel[: i + 1])
            made = kinds.get(q)
            if made is not None:
                if not made:
                    raise UnsafeArchive(f"refusing {entry!r}: /{'/'.join(q)} in the archive is not a directory")
                continue
            try:
                st = fs.lstat(dest + list(q))
            except FileNotFoundError:
                kinds[q] = True
                continue
            except NotADirectoryError:
                raise UnsafeArchive(f"refusing {entry!r}: a parent of it is a symbolic link") from None
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeArchive(f"refusing {entry!r}: /{'/'.join(dest + list(q))} is a symbolic link")
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidParameter(f"cannot extract {entry!r}: /{'/'.join(dest + list(q))} is not a directory")

    for _tf, ti in _entries(spool):
        rel = clean_entry(ti.name)
        if not rel:
            continue
        full = dest + rel
        if not fs.writable(full):
            raise InvalidParameter("mounted volume is marked read-only")
        is_dir_on_way(rel[:-1], ti.name)
        if tuple(full) in fs.mounts and not ti.isdir():  # a bind's host source is never replaced
            raise InvalidParameter(f"unlinkat /{'/'.join(full)}: device or resource busy")
        if ti.islnk():
            target = clean_entry(ti.linkname)
            if not target:
                raise UnsafeArchive(f"refusing hard link to the destination itself: {ti.name!r}")
            is_dir_on_way(target[:-1], ti.name)
        elif not (ti.isreg() or ti.isdir() or ti.issym() or ti.ischr() or ti.isblk() or ti.isfifo()):
            raise InvalidParameter(f"unsupported archive entry type {ti.type!r} for {ti.name!r}")
        made = kinds.get(tuple(rel))
        if made is None:
            try:
                existing: bool | None = stat.S_ISDIR(fs.lstat(full).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                existing = None
        else:
            existing = made
        if opts.no_overwrite_dir_non_dir and existing is not None:
            where = "/" + "/".join(full)
            if existing and not ti.isdir():
                raise InvalidParameter(f"cannot overwrite directory {where!r} with non-directory {ti.name!r}")
            if not existing and ti.isdir():
                raise InvalidParameter(f"cannot overwrite non-directory {where!r} with directory {ti.name!r}")
        if not ti.isdir():
            for k in [k for k in kinds if k[: len(rel)] == tuple(rel)]:
                del kinds[k]
        kinds[tuple(rel)] = ti.isdir()


def _extract_entry(fs: ContainerFS, dest: list[str], tf: tarfile.TarFile, ti: tarfile.TarInfo,
                   opts: ExtractOptions, dir_times: list[tuple[list[str], float]]) -> None:
    rel = clean_entry(ti.name)
    if not rel:
        return  # docker leaves the extraction point itself alone
    owner = opts.chown or (ti.uid, ti.gid)
    full = dest + rel
    dfd, base = fs.parent(full, create=True)
    try:
        if ti.isdir():
            if tuple(full) in fs.mounts:
                return  # a mount point: the host directory keeps its owner and mode
            make_dir(ti, dfd, base, owner)
            dir_times.append((full, ti.mtime))
            return
        remove_existing(dfd, base, keep_dir=False)
        if ti.isreg():
            if not make_file(tf, ti, dfd, base, owner):
                raise InvalidParameter(f"unexpected end of archive in {ti.name!r}")
        elif ti.islnk():
            sfd, sname = fs.parent(dest + clean_entry(ti.linkname))
            try:
                if stat.S_ISDIR(os.stat(sname, dir_fd=sfd, follow_symlinks=False).st_mode):
                    raise UnsafeArchive(f"refusing hard link to a directory: {ti.name!r}")
                os.link(sname, base, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(sfd)
        else:
            make_special(ti, dfd, base, owner)
    finally:
        os.close(dfd)


def extract(fs: ContainerFS, dest: list[str], spool: IO[bytes], opts: ExtractOptions) -> None:
    """Check the whole archive, then unpack it into directory ``dest`` (resolved parts)."""
    try:
        _check_plan(fs, dest, spool, opts)
        dir_times: list[tuple[list[str], float]] = []
        for tf, ti in _entries(spool):
            _extract_entry(fs, dest, tf, ti, opts, dir_times)
        for parts, mtime in sorted(dir_times, key=lambda x: -len(x[0])):
            try:
                dfd, name = fs.parent(parts)
            except (OSError, UnsafeArchive):
                continue
            try:
                os.utime(name, (mtime, mtime), dir_fd=dfd, follow_symlinks=False)
            except OSError:
                pass
            finally:
                os.close(dfd)
    except UnsafeArchive as e:
        raise InvalidParameter(str(e)) from None
    except OSError as e:
        if e.errno in (errno.EROFS,):
            raise Forbidden("container rootfs is marked read-only") from None
        raise SystemError_(f"extracting the archive failed: {e}") from None


def extract_to_container(containers: ContainerService, ref: str, path: str, body: IO[bytes], spool_dir: str,
                         no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
    """PUT /containers/{id}/archive: unpack a tar into the directory ``path`` of the container."""
    c = containers.get(ref)
    cp = parse_container_path(path)
    with open_upload(body, spool_dir) as spool:
        session = CopySession(containers, c)
        try:
            fs = session.fs
            assert fs is not None
            dest = fs.resolve(cp.dir_parts + ([cp.base] if cp.base not in ("", ".") else []))
            try:
                st = fs.lstat(dest)
            except FileNotFoundError:
                raise not_found(cp, ref) from None
            except NotADirectoryError:
                raise InvalidParameter("extraction point is not a directory") from None
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidParameter("extraction point is not a directory")
            if not fs.writable(dest):
                in_volume = any(dest[: len(k)] == list(k) for k in fs.mounts)
                if in_volume:
                    raise InvalidParameter("mounted volume is marked read-only")
                raise Forbidden("container rootfs is marked read-only")
            opts = ExtractOptions(no_overwrite_dir_non_dir)
            user = c.config.get("User") or ""
            if copy_uid_gid and user:
                from dockyard.containers.users import resolve_user

                uid, gid, _ = resolve_user(fs.rootfs, user)
                opts.chown = (uid, gid)
            extract(fs, dest, spool, opts)
        finally:
            session.close()
    containers.publish(c, "extract-to-dir")
