"""A per-client request rate limit (a token bucket per client address), exact across every worker process.

The buckets live in a shared mapping made before the workers fork, so one client gets one budget whichever
worker serves it. Each update is a read-modify-write under two locks: a thread lock (the threads of one
worker) and a POSIX record lock on the mapping's file (the workers). The record lock belongs to the process,
so the kernel drops it if a worker dies holding it: a killed worker cannot stop the others.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import struct
import tempfile
import threading
import time

_SLOT = struct.Struct("=Qdd")  # address hash, tokens, last refill (monotonic seconds)
_SLOTS = 8192


class RateLimiter:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate * 2, 1.0)
        size = _SLOT.size * _SLOTS
        self._file = tempfile.TemporaryFile(prefix="dockyard-ratelimit-")  # unlinked; the workers inherit it
        self._file.truncate(size)
        self._mem = mmap.mmap(self._file.fileno(), size, flags=mmap.MAP_SHARED)
        self._threads = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, client: str) -> float:
        """0 when the request may go on, else the seconds to wait before the next one (Retry-After)."""
        if self.rate <= 0:
            return 0.0
        h = int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8).digest(), "little") | 1
        off = (h % _SLOTS) * _SLOT.size
        fd = self._file.fileno()
        with self._threads:
            fcntl.lockf(fd, fcntl.LOCK_EX, _SLOT.size, off)
            try:
                key, tokens, last = _SLOT.unpack_from(self._mem, off)
                now = time.monotonic()
                if key != h:
                    tokens, last = self.burst, now
                tokens = min(self.burst, tokens + (now - last) * self.rate)
                if tokens < 1.0:
                    _SLOT.pack_into(self._mem, off, h, tokens, now)
                    return (1.0 - tokens) / self.rate
                _SLOT.pack_into(self._mem, off, h, tokens - 1.0, now)
                return 0.0
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, _SLOT.size, off)
