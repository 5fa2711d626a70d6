"""A build request's options (the query parameters of ``POST /build``) and the errors a build reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BuildError(Exception):
    """A failed build: reported in the stream as ``errorDetail`` (with ``code`` when a command failed)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class BuildCancelled(BuildError):
    def __init__(self) -> None:
        super().__init__("context canceled")


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    buildargs: dict[str, str | None] = field(default_factory=dict)
    nocache: bool = False
    pull: bool = False
    rm: bool = True
    forcerm: bool = False
    quiet: bool = False
    cachefrom: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    network_mode: str = "default"
    extra_hosts: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    platform: str = ""
    squash: bool = False
    secrets: dict[str, bytes] = field(default_factory=dict)
    auth: dict[str, Any] = field(default_factory=dict)
    build_id: str = ""
    outputs: Any = None  # the ``outputs`` JSON as sent; build/outputs.py reads it
