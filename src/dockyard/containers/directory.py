"""The containers' records in memory, over the store: the one place that knows which containers exist.

It is built before any service (``daemon/main.py``) and handed to those that need to ask about containers:
images (which containers use an image, for ``rmi``), volumes (which use a volume), networks (which run, a
name's id, the settings connect/disconnect changed) and the exec service; the container service keeps its
records here.  It implements those services' own ``Protocol``s (``images/ports.py``, ``volumes/ports.py``,
``networks/ports.py``), so no service installs a callback into another.
"""

from __future__ import annotations

import threading
from typing import Any

from dockyard.containers.mounts import volume_names
from dockyard.containers.state import Container
from dockyard.containers.store import ContainerStore
from dockyard.errors import InvalidParameter, NotFound


class ContainerDirectory:
    def __init__(self, store: ContainerStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._by_id: dict[str, Container] = {c.id: c for c in store.load_all()}

    # -- records ------------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/") or unique ID prefix — docker's 404 wording otherwise."""
        with self._lock:
            c = self._by_id.get(ref)
            if c is not None:
                return c
            name = ref.lstrip("/")
            for c in self._by_id.values():
                if c.name == name:
                    return c
            matches = [c for c in self._by_id.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def find(self, cid: str) -> Container | None:
        """By full ID only (None when gone)."""
        with self._lock:
            return self._by_id.get(cid)

    def contains(self, cid: str) -> bool:
        with self._lock:
            return cid in self._by_id

    def all(self) -> list[Container]:
        with self._lock:
            return list(self._by_id.values())

    def add(self, c: Container) -> None:
        with self._lock:
            self._by_id[c.id] = c

    def discard(self, cid: str) -> None:
        with self._lock:
            self._by_id.pop(cid, None)

    def save(self, c: Container) -> None:
        self.store.save(c)

    # -- what other services ask ------------------------------------------------------------------
    def live_ids(self) -> set[str]:
        """IDs of running or paused containers (networks keep their namespaces at start-up)."""
        return {c.id for c in self.all() if c.state.Running or c.state.Paused}

    def identify(self, ref: str) -> tuple[str, str]:
        """(id, name) of a container named by id, name or prefix (network connect/disconnect)."""
        c = self.get(ref)
        return c.id, c.name

    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) of each container made from the image (rmi's conflicts)."""
        return [(c.id, c.state.Running) for c in self.all() if c.image_id == image_id]

    def volume_users(self, name: str) -> list[str]:
        """IDs of containers that mount the volume, named or anonymous (volume rm and prune)."""
        users = []
        for c in self.all():
            named = [v or c.anon_volumes.get(t, "") for v, t in volume_names(c.host_config, c.config)]
            named += [v.rsplit(":", 2)[0] for v in c.volumes_from]  # --volumes-from: in use here too
            if name in named:
                users.append(c.id)
        return users

    def settings_changed(self, cid: str, settings: dict[str, Any]) -> None:
        """connect/disconnect/update_ports changed a container's networks: inspect shows it at once."""
        c = self.find(cid)
        if c is None:
            return
        c.network_settings = dict(settings or {})
        self.save(c)
