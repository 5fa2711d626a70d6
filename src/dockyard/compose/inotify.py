"""Linux inotify through ctypes: the kernel tells ``compose watch`` which files changed (no polling).

A ``TreeWatcher`` watches every directory under its roots (a new directory is watched as it appears, and
the files already in it count as changed); ``changes()`` blocks until something changes, then gathers the
burst for a short quiet period (an editor's save is several events) and returns the changed paths. Which
paths matter (a single watched file's siblings do not) is the caller's filter.
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import time

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
         | IN_DELETE_SELF | IN_MOVE_SELF)
_HEAD = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)


class InotifyError(OSError):
    pass


class TreeWatcher:
    def __init__(self, roots: list[str], quiet: float = 0.1) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if fd < 0:
            e = ctypes.get_errno()
            raise InotifyError(e, f"inotify_init1: {os.strerror(e)}")
        self.fd = fd
        self.quiet = quiet
        self._dirs: dict[int, str] = {}  # watch descriptor → the directory it watches
        for root in roots:
            if os.path.isdir(root):
                self._watch_tree(root)
            else:  # a single file: its directory is watched (an editor replaces the file by renaming)
                self._watch(os.path.dirname(os.path.abspath(root)) or "/")

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> TreeWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _watch(self, directory: str) -> None:
        wd = self._add(self.fd, os.fsencode(directory), _MASK)
        if wd < 0:
            e = ctypes.get_errno()
            if e == 28:  # ENOSPC: the user's watch limit
                raise InotifyError(e, "inotify watch limit reached (fs.inotify.max_user_watches)")
            return  # gone meanwhile, or unreadable: nothing to watch there
        self._dirs[wd] = directory

    def _watch_tree(self, root: str) -> list[str]:
        """Watch ``root`` and every directory under it; the files found there."""
        found = []
        for d, _dirs, files in os.walk(root):
            self._watch(d)
            found += [os.path.join(d, f) for f in files]
        return found

    def _read(self, timeout: float | None) -> list[str]:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out: list[str] = []
        off = 0
        while off + _HEAD.size <= len(data):
            wd, mask, _cookie, size = _HEAD.unpack_from(data, off)
            name = data[off + _HEAD.size:off + _HEAD.size + size].rstrip(b"\0")
            off += _HEAD.size + size
            if mask & IN_IGNORED:
                self._dirs.pop(wd, None)
                continue
            if mask & IN_Q_OVERFLOW:  # events were lost: everything watched counts as changed
                for d in list(self._dirs.values()):
                    out += [os.path.join(d, f) for f in _listdir(d)]
                continue
            base = self._dirs.get(wd)
            if base is None:
                continue
            path = os.path.join(base, os.fsdecode(name)) if name else base
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    out += self._watch_tree(path)
                elif mask & (IN_DELETE | IN_MOVED_FROM):
                    out.append(path)
                continue
            out.append(path)
        return out

    def changes(self, timeout: float | None = None) -> list[str]:
        """Block (up to ``timeout``) until files change; the changed paths, each once, in order."""
        paths = self._read(timeout)
        if not paths:
            return []
        deadline = time.monotonic() + 2.0  # a steady stream of changes is still reported
        while time.monotonic() < deadline:
            more = self._read(self.quiet)
            if not more:
                break
            paths += more
        return list(dict.fromkeys(paths))


def _listdir(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except OSError:
        return []
