"""`docker cp` on the engine side: stat, archive and extract paths inside a container's filesystem.

Every lookup walks the container's filesystem one component at a time from directory file descriptors with
``O_NOFOLLOW``: a symlink is only ever followed by our own resolver, which reads the link and restarts from the
container's root for absolute targets, so no path — nor a symlink a process in the container swaps in while we
work — can lead outside the container. Bind mounts and volumes are crossed to their host source, as docker's
daemon does by mounting them for the copy. An uploaded archive is spooled and checked whole before anything is
written (containers/archive_extract.py, which builds on this module; this one does not import it).
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.errors import InvalidParameter, NotFound
from dockyard.storage.tarsafe import UnsafeArchive, end_of_archive, header_bytes
from dockyard.util.tario import BlockedPath, file_entry_chunks, open_dir_path, tarinfo_from_stat

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService
    from dockyard.containers.state import Container

MAX_LINKS = 255

# Go's os.FileMode type bits (the stat header carries them, clients test ModeDir / ModeSymlink)
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20


def go_file_mode(mode: int) -> int:
    """A POSIX st_mode as Go's os.FileMode (what docker's stat header holds)."""
    out = stat.S_IMODE(mode) & 0o777
    if stat.S_ISDIR(mode):
        out |= GO_MODE_DIR
    elif stat.S_ISLNK(mode):
        out |= GO_MODE_SYMLINK
    elif stat.S_ISBLK(mode):
        out |= GO_MODE_DEVICE
    elif stat.S_ISCHR(mode):
        out |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE
    elif stat.S_ISFIFO(mode):
        out |= GO_MODE_NAMED_PIPE
    elif stat.S_ISSOCK(mode):
        out |= GO_MODE_SOCKET
    if mode & stat.S_ISUID:
        out |= GO_MODE_SETUID
    if mode & stat.S_ISGID:
        out |= GO_MODE_SETGID
    if mode & stat.S_ISVTX:
        out |= GO_MODE_STICKY
    return out


def _go_time(ts: float) -> str:
    """RFC 3339 with nanoseconds and trailing zeros trimmed, as Go's time.Time marshals."""
    dt = datetime.fromtimestamp(int(ts), UTC)
    frac = f"{round((ts - int(ts)) * 1e9):09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


@dataclass
class PathStat:
    name: str
    size: int
    mode: int
    mtime: str
    link_target: str = ""

    def header(self) -> str:
        """The X-Docker-Container-Path-Stat value: URL-safe base64 of the JSON, like dockerd."""
        body = json.dumps({"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                           "linkTarget": self.link_target}, separators=(",", ":"))
        return base64.urlsafe_b64encode(body.encode()).decode()


# -- container paths ----------------------------------------------------------------------------


@dataclass
class ContainerPath:
    """A path as the client gave it, cleaned docker's way: ``abs_path`` keeps a trailing ``/`` or ``/.``."""

    given: str
    abs_path: str
    dir_parts: list[str]
    base: str  # last element; "" after a trailing slash, "." for "/."

    @property
    def name(self) -> str:
        """filepath.Base of the absolute path ("/" for the root)."""
        stripped = self.abs_path.rstrip("/")
        return stripped.rsplit("/", 1)[-1] if stripped else "/"


def parse_container_path(path: str) -> ContainerPath:
    """Join ``path`` to ``/`` and clean it as Go's filepath.Clean does: a ``..`` at the root stays at the root."""
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    abs_path = "/" + "/".join(parts)
    trailing_dot = path == "." or path.endswith("/.")
    if trailing_dot:
        abs_path = abs_path.rstrip("/") + "/."
    elif path.endswith("/") and abs_path != "/":
        abs_path += "/"
    if trailing_dot:
        return ContainerPath(path, abs_path, parts, ".")
    if path.endswith("/") or not parts:
        return ContainerPath(path, abs_path, parts, "")
    return ContainerPath(path, abs_path, parts[:-1], parts[-1])


# -- the container's filesystem, walked by file descriptor --------------------------------------------


@dataclass
class Mount:
    source: str
    rw: bool


class ContainerFS:
    """The rootfs plus bind/volume mounts (container path parts → host source), never following a symlink."""

    def __init__(self, rootfs: str, mounts: dict[tuple[str, ...], Mount], rootfs_rw: bool = True) -> None:
        self.rootfs = rootfs
        self.mounts = mounts
        self.rootfs_rw = rootfs_rw
        self.root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def writable(self, parts: list[str]) -> bool:
        """Whether the deepest mount holding ``parts`` (or the rootfs) is read-write."""
        for i in range(len(parts), 0, -1):
            m = self.mounts.get(tuple(parts[:i]))
            if m is not None:
                return m.rw
        return self.rootfs_rw

    def open_dir(self, parts: list[str], create: bool = False) -> int:
        """An fd of directory ``parts``; symlinks on the way raise UnsafeArchive (ELOOP), never followed."""

        def mount_source(i: int) -> str | None:
            mount = self.mounts.get(tuple(parts[: i + 1]))
            return mount.source if mount is not None else None

        try:
            return open_dir_path(self.root_fd, parts, create, mount_source)
        except BlockedPath as e:
            if e.errno == errno.ELOOP:
                raise UnsafeArchive(f"/{e.filename} is a symbolic link") from None
            raise

    def parent(self, parts: list[str], create: bool = False) -> tuple[int, str]:
        """(fd of the directory holding ``parts``, last name); a mount point is named through its source."""
        mount = self.mounts.get(tuple(parts))
        if mount is not None:
            src = os.path.normpath(mount.source)
            return os.open(os.path.dirname(src) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), \
                os.path.basename(src)
        return self.open_dir(parts[:-1], create), parts[-1]

    def lstat(self, parts: list[str]) -> os.stat_result:
        if not parts:
            return os.fstat(self.root_fd)
        try:
            dfd, name = self.parent(parts)
        except UnsafeArchive:
            raise NotADirectoryError(errno.ENOTDIR, "symlink in path") from None
        try:
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(dfd)

    def readlink(self, parts: list[str]) -> str:
        dfd, name = self.parent(parts)
        try:
            return os.readlink(name, dir_fd=dfd)
        finally:
            os.close(dfd)

    def resolve(self, parts: list[str], follow_last: bool = True) -> list[str]:
        """Follow symlinks inside the container (absolute targets restart at its root, ``..`` stops there)."""
        pending = list(parts)
        out: list[str] = []
        links = 0
        while pending:
            comp = pending.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if out:
                    out.pop()
                continue
            cand = [*out, comp]
            if not pending and not follow_last:
                out = cand
                break
            try:
                st = self.lstat(cand)
            except (FileNotFoundError, NotADirectoryError):
                out = cand
                continue
            if not stat.S_ISLNK(st.st_mode):
                out = cand
                continue
            links += 1
            if links > MAX_LINKS:
                raise InvalidParameter(f"too many levels of symbolic links in {'/' + '/'.join(parts)}")
            target = self.readlink(cand)
            if target.startswith("/"):
                out = []
            pending = target.split("/") + pending
        return out


def not_found(cp: ContainerPath, ref: str) -> NotFound:
    return NotFound(f"Could not find the file {cp.given} in container {ref}")


def locate(fs: ContainerFS, cp: ContainerPath, ref: str) -> tuple[list[str], os.stat_result]:
    """The target's resolved parts and lstat: parent directories followed, the last element not."""
    parts = fs.resolve(cp.dir_parts)
    if cp.base not in ("", "."):
        parts.append(cp.base)
    try:
        st = fs.lstat(parts)
    except FileNotFoundError:
        raise not_found(cp, ref) from None
    except NotADirectoryError:
        st = None
    if st is None or (cp.base in ("", ".") and not stat.S_ISDIR(st.st_mode)):
        raise InvalidParameter(f"lstat {cp.abs_path}: not a directory")
    return parts, st


def stat_path(fs: ContainerFS, cp: ContainerPath, ref: str) -> tuple[list[str], PathStat]:
    parts, st = locate(fs, cp, ref)
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = "/" + "/".join(fs.resolve(parts))
    return parts, PathStat(cp.name, st.st_size, go_file_mode(st.st_mode), _go_time(st.st_mtime), link)


# -- archive out -------------------------------------------------------------------------------------


def _xattr_pax(dfd: int, name: str) -> dict[str, str]:
    """security.capability like dockerd's archiver (file capabilities survive a copy)."""
    try:
        value = os.getxattr(f"/proc/self/fd/{dfd}/{name}", "security.capability", follow_symlinks=False)
    except OSError:
        return {}
    return {"SCHILY.xattr.security.capability": value.decode("utf-8", "surrogateescape")}


class _TarWriter:
    def __init__(self, fs: ContainerFS) -> None:
        self.fs = fs
        self.hardlinks: dict[tuple[int, int], str] = {}

    def entry(self, dfd: int, name: str, arc: str, st: os.stat_result) -> Iterator[bytes]:
        ti = tarinfo_from_stat(arc, st, self.hardlinks, lambda: os.readlink(name, dir_fd=dfd))
        if ti is None:
            return  # sockets are skipped, as docker's archiver does
        if ti.type == tarfile.REGTYPE:
            ti.pax_headers = _xattr_pax(dfd, name)
            yield from self._file(dfd, name, ti)
            return
        yield header_bytes(ti)

    @staticmethod
    def _file(dfd: int, name: str, ti: tarfile.TarInfo) -> Iterator[bytes]:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return  # swapped for something else while we looked: skip it
            yield from file_entry_chunks(ti, lambda n: os.read(fd, n))
        finally:
            os.close(fd)

    def tree(self, parts: list[str], prefix: str) -> Iterator[bytes]:
        """Entries below directory ``parts``, sorted, crossing into mounts like a walk of the live tree."""
        dfd = self.fs.open_dir(parts)
        try:
            names = sorted(os.listdir(dfd))
            for name in names:
                child = [*parts, name]
                arc = f"{prefix.rstrip('/')}/{name}" if prefix else name
                try:
                    cdfd, cname = self.fs.parent(child) if tuple(child) in self.fs.mounts else (os.dup(dfd), name)
                except OSError:
                    continue
                try:
                    st = os.stat(cname, dir_fd=cdfd, follow_symlinks=False)
                    yield from self.entry(cdfd, cname, arc, st)
                except FileNotFoundError:
                    continue
                finally:
                    os.close(cdfd)
                if stat.S_ISDIR(st.st_mode):
                    try:
                        yield from self.tree(child, arc.rstrip("/"))
                    except UnsafeArchive:
                        continue  # replaced by a symlink under us: not followed
        finally:
            os.close(dfd)


def archive_chunks(fs: ContainerFS, parts: list[str], st: os.stat_result, cp: ContainerPath) -> Iterator[bytes]:
    """The tar docker serves: the target under its requested base name (a directory with its contents)."""
    writer = _TarWriter(fs)
    base = cp.name
    if stat.S_ISDIR(st.st_mode):
        top = "" if base == "/" else base
        if parts:
            dfd, name = fs.parent(parts)
        else:
            dfd, name = os.dup(fs.root_fd), "."
        try:
            dst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            yield from writer.entry(dfd, name, top or "/", dst)
        finally:
            os.close(dfd)
        yield from writer.tree(parts, "/" if base == "/" else top)
    else:
        dfd, name = fs.parent(parts)
        try:
            yield from writer.entry(dfd, name, base, st)
        finally:
            os.close(dfd)
    yield end_of_archive()


# -- a copy against one container ---------------------------------------------------------------------


_NET_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")


def _mount_table(c: Any, state_dir: str) -> dict[tuple[str, ...], Mount]:
    """Binds and volumes of the container's last start, and its generated /etc files (docker mounts the same
    for a copy). Only those: other binds of the spec (devices, the init binary) are not the container's data."""
    entries = [(str(m.get("Destination") or ""), str(m.get("Source") or ""), bool(m.get("RW", True)))
               for m in c.mounts or [] if m.get("Type") in ("bind", "volume")]
    try:
        with open(os.path.join(state_dir, "config.json")) as f:
            spec = json.load(f)
        entries += [(m["destination"], m["source"], "ro" not in (m.get("options") or []))
                    for m in spec.get("mounts") or [] if m.get("destination") in _NET_FILES and m.get("source")]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    table: dict[tuple[str, ...], Mount] = {}
    for dest, source, rw in entries:
        parts = tuple(p for p in dest.split("/") if p and p != ".")
        if parts and ".." not in parts and source and os.path.exists(source):
            table[parts] = Mount(source, rw)
    return table


class CopySession:
    """The container's filesystem for one copy: mounted (and locked against a start) if it is not running.

    A stopped container keeps its lock for the whole copy, as dockerd does, so a concurrent start cannot find
    its rootfs unmounted under it; ``close`` unmounts what was mounted here and releases the lock.
    """

    def __init__(self, containers: ContainerService, c: Container) -> None:
        from dockyard.util.mounts import is_mountpoint

        self.containers = containers
        self.c = c
        self._cv = containers.cond(c)
        self._cv.acquire()
        self._locked = True
        self._mounted_here = False
        self.fs: ContainerFS | None = None
        try:
            snaps = containers.snapshots
            running = bool(c.state.Running or c.state.Paused)
            if running:
                self._cv.release()
                self._locked = False
            merged = snaps.merged_path(c.id)
            if not running and not is_mountpoint(merged):
                merged = snaps.mount(c.id)
                self._mounted_here = True
            elif running:
                merged = snaps.mount(c.id)
            table = _mount_table(c, containers.state_dir(c.id))
            self.fs = ContainerFS(merged, table,
                                  rootfs_rw=not c.host_config.get("ReadonlyRootfs"))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.fs is not None:
            self.fs.close()
            self.fs = None
        if self._mounted_here:
            self._mounted_here = False
            try:
                self.containers.snapshots.unmount(self.c.id)
            except Exception:  # noqa: BLE001 - the next start or removal unmounts it anyway
                pass
        if self._locked:
            self._locked = False
            self._cv.release()


class ArchiveStream:
    """The GET body: tar chunks, and the session closed when the server is done with it (even unread)."""

    def __init__(self, session: CopySession, chunks: Iterator[bytes]) -> None:
        self.session = session
        self.chunks = chunks

    def __iter__(self) -> ArchiveStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self.chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
        self.session.close()


def stat_container_path(containers: ContainerService, ref: str, path: str) -> PathStat:
    """HEAD /containers/{id}/archive."""
    c = containers.get(ref)
    cp = parse_container_path(path)
    session = CopySession(containers, c)
    try:
        assert session.fs is not None
        return stat_path(session.fs, cp, ref)[1]
    finally:
        session.close()


def archive_container_path(containers: ContainerService, ref: str, path: str) -> tuple[PathStat, ArchiveStream]:
    """GET /containers/{id}/archive: the stat and the tar stream (which owns the session until closed)."""
    c = containers.get(ref)
    cp = parse_container_path(path)
    session = CopySession(containers, c)
    try:
        assert session.fs is not None
        parts, pstat = stat_path(session.fs, cp, ref)
        st = session.fs.lstat(parts)
        stream = ArchiveStream(session, archive_chunks(session.fs, parts, st, cp))
        containers.publish(c, "archive-path")
    except BaseException:
        session.close()
        raise
    return pstat, stream
