"""What a route handler returns; the server turns each into bytes on the wire."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JSON:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Empty:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """A chunked response, each item flushed as it comes (progress, logs, events, stats)."""

    chunks: Iterable[bytes]
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Response = JSON | Empty | Raw | Stream | None
