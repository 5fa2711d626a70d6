"""The on-disk log formats: json-file (docker's format), local (compact binary), none.

The container's monitor (``native/logwriter.c``) writes them, because it
holds the container's output; the daemon only reads
(``dockyard.containers.logs``).  Both file drivers rotate at ``max-size``
keeping ``max-file`` files (``log.json``, ``log.json.1`` …) so a chatty
container never fills the disk; the limits are parsed here and handed to
the monitor in bytes.
"""

from __future__ import annotations

import struct
import time

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILE = 3
# a line longer than this is written as a partial message, like docker's 16K buffer
MAX_LINE = 16 * 1024

# local driver record: stream (1 stdout, 2 stderr), time in ns, payload length; payload; length again
# (the trailing length lets a reader walk a file backwards for --tail)
LOCAL_HEAD = struct.Struct(">BQI")
LOCAL_TAIL = struct.Struct(">I")
STREAM_CODES = {"stdout": 1, "stderr": 2}
STREAM_NAMES = {1: "stdout", 2: "stderr"}

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def rfc3339_nano(ns: int | None = None, trim: bool = True) -> str:
    """UTC time with nanoseconds, the way Go's RFC3339Nano prints it (trailing zeros dropped).

    ``trim=False`` keeps all nine digits, as the engine's state timestamps do
    (those compare correctly as strings).
    """
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if not trim:
        return f"{base}.{frac:09d}Z"
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def parse_size(text: str) -> int:
    """'10m' → bytes; docker's units (k, m, g, binary)."""
    raw = text.strip().lower()
    num = raw.rstrip("bkmg")
    unit = raw[len(num) :]
    if unit not in _UNITS or not num:
        raise ValueError(f"invalid size: {text!r}")
    return int(float(num) * _UNITS[unit])


def rotation_limits(opts: dict[str, str]) -> tuple[int, int]:
    """(max size in bytes or 0 for unlimited, max files) from log-opts, with never-fill-the-disk defaults."""
    size_opt = opts.get("max-size")
    max_size = DEFAULT_MAX_SIZE if size_opt is None else (0 if size_opt in ("", "-1") else parse_size(size_opt))
    max_file = int(opts.get("max-file") or DEFAULT_MAX_FILE)
    return max_size, max(1, max_file)
