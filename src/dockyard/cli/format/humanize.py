"""The CLI's human-readable durations and sizes: the shared go-units rules plus docker's CreatedAt layout."""

from __future__ import annotations

from dockyard.util.humanize import bytes_size, human_duration, human_size, parse_time, time_ago

__all__ = ["bytes_size", "format_rfc3339_local", "human_duration", "human_size", "parse_time", "time_ago"]


def format_rfc3339_local(ts: float) -> str:
    """docker's CreatedAt: "2024-01-02 15:04:05 +0000 UTC" style, in local time."""
    from datetime import UTC, datetime  # only --format with CreatedAt needs it: start-up time

    dt = datetime.fromtimestamp(ts, tz=UTC).astimezone()
    name = dt.tzname() or ""
    return dt.strftime("%Y-%m-%d %H:%M:%S %z") + (f" {name}" if name else "")
