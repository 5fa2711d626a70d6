"""What the network service asks of the containers, declared here where it is used.

Implemented by ``containers/directory.py``'s ``ContainerDirectory``; tests pass a recording double.
"""

from __future__ import annotations

from typing import Any, Protocol


class ContainerDirectory(Protocol):
    def live_ids(self) -> set[str]:
        """IDs of running containers: start-up keeps their namespaces and links, removes the rest."""
        ...

    def identify(self, ref: str) -> tuple[str, str]:
        """(id, name) of the container named by id, name or prefix; raises NotFound (connect/disconnect)."""
        ...

    def settings_changed(self, cid: str, settings: dict[str, Any]) -> None:
        """Told after connect/disconnect/update_ports changed a container's NetworkSettings."""
        ...
