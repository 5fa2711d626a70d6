"""A per-client request rate limit (a token bucket per client address), shared by every worker process.

The buckets live in an anonymous shared mapping made before the workers fork, so one client gets one budget
whichever worker serves it. Slots are picked by a hash of the address; updates take no lock (a lost update
under a race costs one token more or less, which a rate limit may tolerate; a lock held by a killed worker
could stop every other one).
"""

from __future__ import annotations

import hashlib
import mmap
import struct
import time

_SLOT = struct.Struct("=Qdd")  # address hash, tokens, last refill (monotonic seconds)
_SLOTS = 8192


class RateLimiter:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate * 2, 1.0)
        self._mem = mmap.mmap(-1, _SLOT.size * _SLOTS, flags=mmap.MAP_SHARED)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, client: str) -> float:
        """0 when the request may go on, else the seconds to wait before the next one (Retry-After)."""
        if self.rate <= 0:
            return 0.0
        h = int.from_bytes(hashlib.blake2b(client.encode(), digest_size=8).digest(), "little") | 1
        off = (h % _SLOTS) * _SLOT.size
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
