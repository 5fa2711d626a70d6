"""The build context: a directory (an uploaded tar unpacked once, or the client's own directory read in place),
the ``.dockerignore`` rules over it, source lookup for COPY/ADD, and content checksums for the cache.

Checksums cover what ends up in the layer — relative path, type, mode, link target and content — never the
mtime, so touching a file does not invalidate the cache. A file's content digest is remembered by
(inode, size, mtime, ctime), so an unchanged file is hashed once per daemon even in a context read in place.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from ..errors import InvalidParameter
from ..storage.tarsafe import decompressed
from ..util.dockerignore import IgnoreMatcher, read_patterns
from ..util.tario import open_dir_path
from .context_index import ContextIndex

_RACY_NS = 200_000_000  # a file changed this close to its hashing may change again within the same timestamp


class DigestMemo:
    """Content digests by (dev, inode, size, mtime_ns, ctime_ns): an unchanged file is read once, and any write
    changes its ctime, so a changed file always misses. A touched-but-unchanged file misses too and is hashed
    again: the digest, not the stat, goes into the cache key. Entries new since the last ``drain_new`` are what
    the digest store persists."""

    LIMIT = 500_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._map: dict[tuple[int, int, int, int, int], str] = {}
        self._new: dict[tuple[int, int, int, int, int], str] = {}

    def get(self, key: tuple[int, int, int, int, int]) -> str | None:
        return self._map.get(key)

    def put(self, key: tuple[int, int, int, int, int], digest: str) -> None:
        with self._lock:
            if len(self._map) > self.LIMIT:
                self._map.clear()
            self._map[key] = digest
            self._new[key] = digest

    def preload(self, items: list[tuple[tuple[int, int, int, int, int], str]]) -> None:
        with self._lock:
            for key, digest in items[-self.LIMIT:]:
                self._map.setdefault(key, digest)

    def drain_new(self) -> dict[tuple[int, int, int, int, int], str]:
        with self._lock:
            out, self._new = self._new, {}
        return out


MEMO = DigestMemo()


def stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def remember_digest(st: os.stat_result, digest: str) -> None:
    """A digest computed while the file was written (an unpacked upload: nobody else writes there)."""
    MEMO.put(stat_key(st), digest)


def file_digest(path: str, st: os.stat_result) -> str:
    key = stat_key(st)
    got = MEMO.get(key)
    if got is not None:
        return got
    started = time.time_ns()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    # a file whose last change is this recent could change again within the same timestamp tick (same stat,
    # new content): not remembered, it is read again next time
    if max(st.st_mtime_ns, st.st_ctime_ns) < started - _RACY_NS:
        MEMO.put(key, digest)
    return digest


@dataclass
class Source:
    """One COPY/ADD source as found in the context: ``rel`` inside the context, ``path`` on disk."""

    rel: str
    path: str
    is_dir: bool


class SourceError(InvalidParameter):
    pass


def unpack_tar(stream: IO[bytes], dest: str, preserve: bool = False) -> None:
    """Unpack a tar (plain, gzip, bzip2 or xz: a remote context, an ADDed archive) into ``dest`` without
    following any symlink. An uploaded context goes through ``upload.receive_context`` instead.

    Regular files are hashed as they are written, so the cache's checksum of the context costs no second read.
    ``preserve``: keep the members' owners and mtimes (ADD of a local archive), not only their modes."""
    from .tarstream import TarFormatError, TarReader

    raw = decompressed(stream)
    fileobj: IO[bytes] = raw
    if getattr(raw, "peek", None) is not None:
        magic = raw.peek(6)
        if magic.startswith(b"BZh"):
            import bz2

            fileobj = bz2.BZ2File(raw)  # type: ignore[arg-type]
        elif magic.startswith(b"\xfd7zXZ\x00"):
            import lzma

            fileobj = lzma.LZMAFile(raw)  # type: ignore[arg-type]
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    dir_fds: dict[str, int] = {}
    dirs: list[tuple[str, int, int]] = []  # (rel, mode, mtime): modes applied last, deepest first

    def parent_fd(parts: list[str]) -> int:
        key = "/".join(parts)
        fd = dir_fds.get(key)
        if fd is None:
            if len(dir_fds) > 512:
                for old in dir_fds.values():
                    os.close(old)
                dir_fds.clear()
            fd = dir_fds[key] = open_dir_path(root_fd, parts, create=True)
        return fd

    reader = TarReader(fileobj)  # type: ignore[arg-type]
    try:
        for m in reader:
            parts = [p for p in posixpath.normpath(m.name.lstrip("/")).split("/") if p not in ("", ".")]
            if not parts or ".." in parts:
                continue
            parent = parent_fd(parts[:-1])
            base = parts[-1]
            if m.type == b"5":
                try:
                    os.mkdir(base, 0o755, dir_fd=parent)
                except FileExistsError:
                    pass
                dirs.append(("/".join(parts), m.mode, m.mtime))
            elif m.type in (b"0", b"7"):
                try:
                    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=parent)
                except FileExistsError:
                    _remove(parent, base)
                    dir_fds.pop("/".join(parts), None)
                    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=parent)
                try:
                    h = hashlib.sha256()
                    while chunk := reader.read(1 << 20):
                        h.update(chunk)
                        os.write(fd, chunk)
                    os.fchmod(fd, m.mode)
                    if preserve:
                        os.fchown(fd, m.uid, m.gid)
                        os.utime(fd, (m.mtime, m.mtime))
                    remember_digest(os.fstat(fd), h.hexdigest())
                finally:
                    os.close(fd)
            elif m.type == b"2":
                _remove(parent, base)
                os.symlink(m.linkname, base, dir_fd=parent)
                if preserve:
                    os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
            elif m.type == b"1":
                target = [p for p in posixpath.normpath(m.linkname.lstrip("/")).split("/") if p]
                if ".." in target or not target:
                    continue
                _remove(parent, base)
                tdir = parent_fd(target[:-1])
                os.link(target[-1], base, src_dir_fd=tdir, dst_dir_fd=parent, follow_symlinks=False)
            if preserve and m.type == b"5":
                os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        for rel, mode, mtime in reversed(dirs):
            try:
                os.chmod(os.path.join(dest, rel), mode, follow_symlinks=False)
                if preserve:
                    os.utime(os.path.join(dest, rel), (mtime, mtime), follow_symlinks=False)
            except OSError:
                pass
    except TarFormatError as e:
        raise InvalidParameter(f"failed to read the build context: {e}") from None
    finally:
        for fd in dir_fds.values():
            os.close(fd)
        os.close(root_fd)


def _remove(dfd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(os.path.join(f"/proc/self/fd/{dfd}", name))
    else:
        os.unlink(name, dir_fd=dfd)


class BuildContext:
    """``index``: what an upload left in ``root`` (upload.receive_context), read by ``checksum`` instead of the
    disk; None for a context read in place or unpacked otherwise."""

    def __init__(self, root: str, dockerfile_rel: str = "Dockerfile", index: ContextIndex | None = None) -> None:
        self.root = os.path.realpath(root)
        self.dockerfile_rel = dockerfile_rel
        self.index = index
        patterns: list[str] = []
        try:
            with open(os.path.join(self.root, ".dockerignore")) as f:
                patterns = read_patterns(f.read())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        self.ignore = IgnoreMatcher(patterns)

    def excluded(self, rel: str) -> bool:
        return bool(self.ignore) and self.ignore.excluded(rel)

    def _resolve(self, rel: str) -> str | None:
        """The on-disk path of ``rel``, symlinks resolved but kept inside the context (docker's scoping)."""
        parts = [p for p in posixpath.normpath("/" + rel).split("/") if p]
        cur = self.root
        hops = 0
        i = 0
        while i < len(parts):
            nxt = os.path.join(cur, parts[i])
            if os.path.islink(nxt) and i < len(parts):
                hops += 1
                if hops > 40:
                    return None
                target = os.readlink(nxt)
                base = self.root if target.startswith("/") else cur
                joined = posixpath.normpath(os.path.join(base, target.lstrip("/") if target.startswith("/")
                                                         else target))
                if not (joined + "/").startswith(self.root + "/"):
                    joined = self.root
                rest = parts[i + 1:]
                rel_parts = [p for p in os.path.relpath(joined, self.root).split("/") if p not in ("", ".")]
                parts = rel_parts + rest
                cur = self.root
                i = 0
                continue
            cur = nxt
            i += 1
        return cur

    def sources(self, pattern: str, instruction: str, double_star: bool = False) -> list[Source]:
        """Sources named by a COPY/ADD argument (globs allowed), docker's errors when there are none; with
        ``double_star`` (BuildKit's ``COPY --parents``) a ``**`` segment matches any number of directories."""
        clean = posixpath.normpath("/" + pattern).lstrip("/")
        if pattern.startswith("..") or clean.startswith(".."):
            raise SourceError(f"{instruction} failed: forbidden path outside the build context: {pattern} ()")
        if any(ch in clean for ch in "*?["):
            found: list[Source] = []
            for rel in self._glob(clean, double_star):
                if self.excluded(rel):
                    continue
                path = self._resolve(rel)
                if path is not None and os.path.lexists(path):
                    found.append(Source(rel, path, os.path.isdir(path)))
            if not found:
                raise SourceError(f"{instruction} failed: no source files were specified")
            return found
        if clean and self.excluded(clean):
            raise SourceError(f"{instruction} failed: file not found in build context or excluded by "
                              f".dockerignore: stat {clean}: file does not exist")
        path = self._resolve(clean) if clean else self.root
        if path is None or not os.path.lexists(path):
            raise SourceError(f"{instruction} failed: file not found in build context or excluded by "
                              f".dockerignore: stat {clean}: file does not exist")
        return [Source(clean, path, os.path.isdir(path))]

    def _glob(self, pattern: str, double_star: bool = False) -> list[str]:
        parts = pattern.split("/")
        found = [""]
        for k, part in enumerate(parts):
            nxt: list[str] = []
            for base in found:
                d = os.path.join(self.root, base) if base else self.root
                if double_star and part == "**":
                    nxt.append(base)
                    for dirpath, dirnames, _files in os.walk(d):
                        dirnames.sort()
                        rel_dir = os.path.relpath(dirpath, self.root)
                        for name in dirnames:
                            r = name if rel_dir == "." else f"{rel_dir}/{name}"
                            if not self.excluded(r) or self.ignore.may_include_under(r):
                                nxt.append(r)
                    continue
                if any(ch in part for ch in "*?["):
                    try:
                        names = sorted(os.listdir(d))
                    except OSError:
                        continue
                    for name in names:
                        if fnmatch.fnmatchcase(name, part):
                            nxt.append(f"{base}/{name}" if base else name)
                else:
                    cand = f"{base}/{part}" if base else part
                    if os.path.lexists(os.path.join(self.root, cand)) or k == len(parts) - 1:
                        nxt.append(cand)
            found = nxt
        found = list(dict.fromkeys(found))
        return [f for f in found if f and os.path.lexists(os.path.join(self.root, f))]

    def walk(self, src: Source) -> Iterator[tuple[str, str, os.stat_result]]:
        """(rel under the source, disk path, lstat) for a source and, for a directory, everything below it
        that .dockerignore keeps — sorted, so tars and checksums are deterministic."""
        st = os.stat(src.path) if src.is_dir else os.lstat(src.path)
        if not src.is_dir:
            yield "", src.path, st
            return
        yield "", src.path, st
        yield from self._walk_dir(src.path, src.rel, "")

    def _walk_dir(self, path: str, ctx_rel: str, rel: str) -> Iterator[tuple[str, str, os.stat_result]]:
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return
        for name in names:
            full = os.path.join(path, name)
            crel = f"{ctx_rel}/{name}" if ctx_rel else name
            r = f"{rel}/{name}" if rel else name
            st = os.lstat(full)
            if self.excluded(crel):
                if stat.S_ISDIR(st.st_mode) and self.ignore.may_include_under(crel):
                    yield from self._walk_dir(full, crel, r)
                continue
            yield r, full, st
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk_dir(full, crel, r)

    def checksum(self, srcs: list[Source]) -> str:
        """Content, mode and link targets of the sources (not mtimes, not the context's owners)."""
        h = hashlib.sha256()
        for src in srcs:
            h.update(f"src {src.rel} {int(src.is_dir)}\n".encode())
            rows = self._indexed(src) if self.index is not None else None
            for rel, mode, extra in rows if rows is not None else self._disk_rows(src):
                h.update(f"{rel}\0{stat.S_IFMT(mode)}\0{stat.S_IMODE(mode):o}\0{extra}\n".encode())
        return h.hexdigest()

    def _disk_rows(self, src: Source) -> Iterator[tuple[str, int, str]]:
        for rel, path, st in self.walk(src):
            mode = st.st_mode
            if stat.S_ISREG(mode):
                extra = file_digest(path, st)
            elif stat.S_ISLNK(mode):
                extra = os.readlink(path)
            else:
                extra = ""
            yield rel, mode, extra

    def _indexed(self, src: Source) -> list[tuple[str, int, str]] | None:
        """The rows ``_disk_rows`` would give, from the upload's index (None: not covered by it). Same order,
        same .dockerignore pruning."""
        assert self.index is not None
        disk = os.path.relpath(src.path, self.root)
        if disk == ".":
            disk = ""
        elif disk.startswith("../") or disk == "..":
            return None
        top = self.index.get(disk)
        if top is None:
            return None
        rows = [("", top.mode, top.extra)]
        if not src.is_dir:
            return rows if not stat.S_ISDIR(top.mode) else None
        if not stat.S_ISDIR(top.mode):
            return None
        skip = ""  # an excluded directory whose whole subtree is left out
        for rel, e in self.index.below(disk):
            if skip and rel.startswith(skip):
                continue
            if self.ignore:
                crel = f"{src.rel}/{rel}" if src.rel else rel
                if self.excluded(crel):
                    if stat.S_ISDIR(e.mode) and not self.ignore.may_include_under(crel):
                        skip = rel + "/"
                    continue
            rows.append((rel, e.mode, e.extra))
        return rows
