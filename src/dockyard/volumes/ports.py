"""What the volume service asks of others, declared here where it is used (implemented in containers/)."""

from __future__ import annotations

from typing import Protocol


class VolumeUsers(Protocol):
    def volume_users(self, name: str) -> list[str]:
        """IDs of the containers that mount the volume: `volume rm` refuses, `prune` skips it."""
        ...
