"""Where an uploaded context is unpacked: a slot per (tags, Dockerfile) kept between builds, so the next upload of
the same build rewrites only the files that changed. Each slot is held with a ``flock`` while a build uses it;
a second concurrent build of the same slot gets a fresh directory instead. At most ``SLOTS`` slots are kept,
least recently used out first; pruning the build cache empties them all.

The index of what the last upload left in a slot (upload.receive_context) is kept in memory beside it, and that
upload's tar stream in ``<slot>.tar``: the next upload compares against them and the build checksums from the
index. It is dropped before a slot is written and set
again only once an upload has completed, so an index never describes a half-written slot; after a daemon
restart there is none and the slot is looked at on disk."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable

from .context_index import ContextIndex

SLOTS = 4


class ContextSlots:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self._lock = threading.Lock()
        self._indexes: dict[str, ContextIndex] = {}

    def take_index(self, slot: str) -> ContextIndex | None:
        """The index of ``slot``'s last complete upload, forgotten from now on (the slot is about to change)."""
        with self._lock:
            return self._indexes.pop(slot, None)

    def keep_index(self, slot: str, index: ContextIndex) -> None:
        with self._lock:
            self._indexes[slot] = index

    @staticmethod
    def stream_path(slot: str) -> str:
        """Where the tar stream of the slot's last upload is kept (upload.receive_context compares with it)."""
        return slot + ".tar"

    def claim(self, tags: list[str], dockerfile: str, fresh_dir: Callable[[], str]) -> tuple[str, int | None]:
        """The slot's directory and the held lock's fd (close it to release), or ``(fresh_dir(), None)`` when
        another build holds the slot."""
        df = "" if (dockerfile or "").startswith(".dockerfile.") else dockerfile
        key = hashlib.sha256(json.dumps([sorted(tags), df]).encode()).hexdigest()[:24]
        root = os.path.join(self.root, key)
        fd = _hold(root + ".lock", create=True)
        if fd is None:
            return fresh_dir(), None
        os.makedirs(root, exist_ok=True)
        os.utime(root + ".lock")
        self.evict(keep=key)
        return root, fd

    def evict(self, keep: str = "", limit: int = SLOTS) -> None:
        """Drop every slot beyond the ``limit`` most recently used (never ``keep``, never one in use)."""
        stamps = [(n, _mtime(os.path.join(self.root, n))) for n in os.listdir(self.root) if n.endswith(".lock")]
        locks = [n for n, t in sorted(stamps, key=lambda s: s[1], reverse=True) if t >= 0]
        for name in locks[limit:]:
            key = name[:-5]
            if key == keep:
                continue
            path = os.path.join(self.root, name)
            fd = _hold(path, create=False)
            if fd is None:
                continue  # in use by a running build, or evicted by another build meanwhile
            try:
                self.take_index(os.path.join(self.root, key))
                shutil.rmtree(os.path.join(self.root, key), ignore_errors=True)
                for kept in (self.stream_path(os.path.join(self.root, key)), path[:-5] + ".tar.tmp"):
                    try:
                        os.unlink(kept)
                    except FileNotFoundError:
                        pass
                os.unlink(path)
            finally:
                os.close(fd)


def _mtime(path: str) -> float:
    """When a slot was last claimed; -1 for a lock file another build's eviction removed meanwhile."""
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return -1.0


def _hold(path: str, *, create: bool) -> int | None:
    """The fd of lock file ``path`` held with ``flock``, or None when another build holds it (or, without
    ``create``, it is gone). Builds claim and evict slots concurrently: an eviction unlinks a lock file while it
    holds it, so a lock taken on a file that is no longer the one at ``path`` is let go and taken again."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    while True:
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)
        if not create:
            return None
