"""The services the daemon wires together and hands to every route handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Services:
    config: Any
    db: Any
    events: Any
    images: Any = None
    snapshots: Any = None
    containers: Any = None
    networks: Any = None
    volumes: Any = None
    builds: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
