"""What the image service asks of others, declared here where it is used (implemented in containers/)."""

from __future__ import annotations

from typing import Protocol


class ContainerUsage(Protocol):
    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) of every container made from the image: rmi's conflict checks."""
        ...
