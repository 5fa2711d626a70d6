"""Layer compression for push: gzip made of independent 4 MiB members, compressed on several threads.

A gzip file may hold several members one after the other; every gzip reader (Go's, containerd's, Python's)
reads them as one stream. Compressing blocks independently lets zlib (which releases the GIL) run on every
core, and the output is deterministic for the same input, so the digest is stable.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

BLOCK = 4 << 20
LEVEL = 1  # speed over ratio: layers are compressed once per push target, on the push's critical path

_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="gzip")


def _member(block: bytes) -> bytes:
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)  # 31: gzip wrapper, mtime 0, no name
    return c.compress(block) + c.flush()


def gzip_blocks(src: IO[bytes], on_read: object = None, prefetch: int = 6) -> Iterator[bytes]:
    """Yield the gzip bytes of ``src`` in order; ``on_read(n_total_read)`` after each block is read."""
    pending: deque[Future[bytes]] = deque()
    done = 0
    eof = False
    while True:
        while not eof and len(pending) < prefetch:
            block = src.read(BLOCK)
            if not block:
                eof = True
                break
            done += len(block)
            pending.append(_POOL.submit(_member, block))
            if callable(on_read):
                on_read(done)
        if not pending:
            if done == 0:
                yield _member(b"")
            return
        yield pending.popleft().result()
