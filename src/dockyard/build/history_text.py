"""Go's text forms that docker writes into history and HEALTHCHECK summaries (``%q`` of a slice, durations),
and the parser of the duration flags; the image config must match dockerd's byte for byte."""

from __future__ import annotations

import json
import re

from .dockerfile import ParseError

_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def now_rfc3339() -> str:
    from ..images.config import now_rfc3339 as _now

    return _now()


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a string slice (``["a" "b c"]``), the form docker's history uses."""
    return "[" + " ".join(json.dumps(x) for x in items) + "]"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` for the values a HEALTHCHECK takes."""
    if ns == 0:
        return "0s"
    secs = ns / 1e9
    h, rem = divmod(int(secs), 3600)
    m, s = divmod(rem, 60)
    frac = secs - int(secs)
    out = ""
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    sec = s + frac
    out += (f"{sec:g}" if frac else f"{s}") + "s"
    return out


def parse_duration(text: str, line: int, flag: str) -> int:
    """Go's ``time.ParseDuration`` (nanoseconds); errors name the Dockerfile line."""
    if not text:
        return 0
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ParseError(line, f"time: invalid duration \"{text}\"")
    return int(total)
