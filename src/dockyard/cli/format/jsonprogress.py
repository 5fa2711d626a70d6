"""docker's ``DisplayJSONMessagesStream``: progress lines of pull/push/load.

On a terminal each layer id keeps one line, redrawn in place (cursor up, clear line, rewrite, cursor down) as
its status and bar change. Elsewhere every message without a progress bar is printed as a plain line
(``id: status``), progress messages are dropped, as docker does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any


class ProgressError(Exception):
    """An in-band ``error`` message ended the stream."""


def display(messages: Iterable[dict[str, Any]], out: IO[str], tty: bool | None = None) -> list[dict[str, Any]]:
    """Render ``messages``; returns the ones that were not progress (for callers looking for a digest line)."""
    if tty is None:
        tty = out.isatty()
    lines: dict[str, int] = {}  # id -> line index from the top of what we printed
    total = 0
    plain: list[dict[str, Any]] = []
    for msg in messages:
        if msg.get("error") or msg.get("errorDetail"):
            raise ProgressError(str(msg.get("error") or (msg.get("errorDetail") or {}).get("message") or ""))
        has_progress = bool(msg.get("progressDetail")) and bool(msg.get("progress"))
        if not has_progress:
            plain.append(msg)
        ident = msg.get("id") or ""
        status = msg.get("status") or ""
        if not status and not msg.get("stream"):
            continue  # aux (push digest, build ID) and empty messages show nothing
        if msg.get("stream"):
            out.write(msg["stream"])
            total += msg["stream"].count("\n")
            continue
        if not tty:
            if has_progress:
                continue
            out.write(f"{ident}: {status}\n" if ident else f"{status}\n")
            continue
        text = f"{ident}: {status} {msg.get('progress', '')}".rstrip() if ident else status
        if ident and ident in lines:
            up = total - lines[ident]
            out.write(f"\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")
        else:
            if ident:
                lines[ident] = total
            out.write(f"\x1b[2K\r{text}\n")
            total += 1
        out.flush()
    return plain
