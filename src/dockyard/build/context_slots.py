"""Where an uploaded context is unpacked: a slot per (tags, Dockerfile) kept between builds, so the next upload of
the same build rewrites only the files that changed. Each slot is held with a ``flock`` while a build uses it;
a second concurrent build of the same slot gets a fresh directory instead. At most ``SLOTS`` slots are kept,
least recently used out first; pruning the build cache empties them all."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable

SLOTS = 4


class ContextSlots:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def claim(self, tags: list[str], dockerfile: str, fresh_dir: Callable[[], str]) -> tuple[str, int | None]:
        """The slot's directory and the held lock's fd (close it to release), or ``(fresh_dir(), None)`` when
        another build holds the slot."""
        df = "" if (dockerfile or "").startswith(".dockerfile.") else dockerfile
        key = hashlib.sha256(json.dumps([sorted(tags), df]).encode()).hexdigest()[:24]
        root = os.path.join(self.root, key)
        fd = os.open(root + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return fresh_dir(), None
        os.makedirs(root, exist_ok=True)
        os.utime(root + ".lock")
        self.evict(keep=key)
        return root, fd

    def evict(self, keep: str = "", limit: int = SLOTS) -> None:
        """Drop every slot beyond the ``limit`` most recently used (never ``keep``, never one in use)."""
        locks = sorted((n for n in os.listdir(self.root) if n.endswith(".lock")),
                       key=lambda n: os.stat(os.path.join(self.root, n)).st_mtime, reverse=True)
        for name in locks[limit:]:
            key = name[:-5]
            if key == keep:
                continue
            path = os.path.join(self.root, name)
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # in use by a running build
            try:
                shutil.rmtree(os.path.join(self.root, key), ignore_errors=True)
                os.unlink(path)
            finally:
                os.close(fd)
