"""docker's human-readable durations and sizes (the go-units rules), shared by the daemon and the CLI.

The daemon needs them for the API's container ``Status`` ("Up 3 seconds", "Exited (0) 2 minutes ago")
and the CLI for its columns, so both read the same; nothing here imports beyond the standard library.
"""

from __future__ import annotations

import time

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _go_g(value: float, precision: int) -> str:
    """Go's %.<p>g: like Python's, which both follow C's %g."""
    return f"{value:.{precision}g}"


def _scaled(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 3) -> str:
    """HumanSizeWithPrecision: decimal units, "1.23MB", "4.1kB", "0B"."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL)
    return _go_g(value, precision) + unit


def bytes_size(size: float) -> str:
    """BytesSize: binary units with 4 significant digits, "1.953MiB" (docker stats memory)."""
    value, unit = _scaled(float(size), 1024.0, _BINARY)
    return _go_g(value, 4) + unit


def human_duration(seconds: float) -> str:
    """HumanDuration: "Less than a second", "About a minute", "3 hours", "2 weeks"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_time(text: str) -> float:
    """RFC 3339 (nanoseconds allowed) → epoch seconds; 0 for Go's zero time or garbage."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    from datetime import datetime

    main, dot, rest = t.partition(".")
    if dot:
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        t = main + "." + (frac[:6].ljust(6, "0")) + rest[i:]
    try:
        return datetime.fromisoformat(t).timestamp()
    except ValueError:
        return 0.0


def time_ago(ts: float, now: float | None = None) -> str:
    """"2 minutes ago" for an epoch timestamp (docker's CREATED columns, "Exited (0) … ago")."""
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - ts)) + " ago"
