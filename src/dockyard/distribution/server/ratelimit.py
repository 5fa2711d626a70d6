"""A per-client request rate limit (a token bucket per client address), exact across every worker process.

The buckets live in a shared mapping made before the workers fork, so one client gets one budget whichever
worker serves it; a bucket is found by its client's whole address hash (open addressing), never shared. Each update is a read-modify-write under two locks: a thread lock (the threads of one
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
_PROBE = 8  # slots a client's hash may land in (open addressing)


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
        fd = self._file.fileno()
        with self._threads:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            try:
                now = time.monotonic()
                off, tokens, last = self._slot(h, now)
                tokens = min(self.burst, tokens + (now - last) * self.rate)
                if tokens < 1.0:
                    _SLOT.pack_into(self._mem, off, h, tokens, now)
                    return (1.0 - tokens) / self.rate
                _SLOT.pack_into(self._mem, off, h, tokens - 1.0, now)
                return 0.0
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)

    def _slot(self, h: int, now: float) -> tuple[int, float, float]:
        """(offset, tokens, last refill) of client ``h``'s bucket, among the ``_PROBE`` slots its hash starts at.

        A client without a slot takes an empty one, or one whose bucket has refilled to the full burst (handing
        that to a newcomer changes nobody's budget); only when every probed slot is in use does it take the one
        idle longest, and start from a full burst."""
        start = h % _SLOTS
        free, oldest, oldest_last = -1, -1, float("inf")
        for i in range(_PROBE):
            off = ((start + i) % _SLOTS) * _SLOT.size
            key, tokens, last = _SLOT.unpack_from(self._mem, off)
            if key == h:
                return off, tokens, last
            if free < 0 and (key == 0 or tokens + (now - last) * self.rate >= self.burst):
                free = off
            elif last < oldest_last:
                oldest, oldest_last = off, last
        return (free if free >= 0 else oldest), self.burst, now
