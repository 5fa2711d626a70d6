"""docker's pull/push progress messages (the JSON lines the docker CLI and docker-py render), with the
``progress`` text dockerd renders for a 200-column terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Emit = Callable[[dict[str, Any]], None]


def human_size(n: float) -> str:
    """go-units' ``HumanSize``: four significant digits, decimal units."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def go_duration(seconds: int) -> str:
    h, rem = divmod(max(0, seconds), 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def progress_text(current: int, total: int, start: float = 0.0, now: float | None = None) -> str:
    """``JSONProgress.String()`` at dockerd's width (200): bar, ``current/total`` and the time left."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(50, int(current / total * 100) // 2)
    bar = f"[{'=' * pct}>{' ' * max(0, 50 - pct)}] "
    numbers = f"{human_size(current):>8}/{human_size(total)}" if current <= total else f"{human_size(current):>8}"
    left = ""
    if current > 0 and start > 0 and pct < 50:
        elapsed = (now or time.time()) - start
        left = " " + go_duration(int(elapsed / current * (total - current)))
    return bar + numbers + left


def message(status: str, ident: str = "", detail: dict[str, Any] | None = None, progress: str = "") -> dict[str, Any]:
    msg: dict[str, Any] = {"status": status}
    if detail is not None:
        msg["progressDetail"] = detail
    if progress:
        msg["progress"] = progress
    if ident:
        msg["id"] = ident
    return msg


class Meter:
    """Rate-limited ``Downloading``/``Pushing``/``Extracting`` messages for one layer (at most one per 100 ms
    and per 1% of the total, plus the last)."""

    def __init__(self, emit: Emit, ident: str, status: str, total: int) -> None:
        self.emit = emit
        self.ident = ident
        self.status = status
        self.total = total
        self.start = time.time()
        self._last = 0.0
        self._last_bytes = 0
        self._lock = threading.Lock()

    def update(self, current: int, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < 0.1 and current - self._last_bytes < max(1, self.total // 100):
                return
            if not force and current == self._last_bytes:
                return
            self._last, self._last_bytes = now, current
        detail = {"current": current, "total": self.total}
        self.emit(message(self.status, self.ident, detail, progress_text(current, self.total, self.start)))


def short_id(digest: str) -> str:
    """The 12-hex id docker shows a layer by."""
    return digest.split(":", 1)[-1][:12]
