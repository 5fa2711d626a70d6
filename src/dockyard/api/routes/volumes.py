"""Volume routes: create, list, inspect, remove, prune (local driver)."""

from __future__ import annotations

from typing import Any, Protocol

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty
from dockyard.api.router import Router
from dockyard.errors import InvalidParameter


class VolumeCalls(Protocol):
    """The calls these routes make (the volume service implements them; mypy checks it in ``register``)."""

    def list_volumes(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]: ...

    def create(self, name: str = "", driver: str = "local", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, anonymous: bool = False) -> dict[str, Any]: ...

    def inspect(self, name: str) -> dict[str, Any]: ...

    def remove(self, name: str, force: bool = False) -> None: ...

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]: ...


def register(r: Router, s: Services) -> None:
    volumes: VolumeCalls = s.volumes

    @r.get("/volumes")
    def list_(req: Request) -> JSON:
        return JSON(volumes.list_volumes(req.filters()))

    @r.post("/volumes/create")
    def create(req: Request) -> JSON:
        body = req.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("invalid volume create body")
        return JSON(volumes.create(body.get("Name") or "", body.get("Driver") or "local",
                                     body.get("Labels") or {}, body.get("DriverOpts") or {}), 201)

    @r.get("/volumes/{name}")
    def inspect(req: Request) -> JSON:
        return JSON(volumes.inspect(req.params["name"]))

    @r.delete("/volumes/{name}")
    def remove(req: Request) -> Empty:
        volumes.remove(req.params["name"], force=req.q_bool("force"))
        return Empty(204)

    @r.post("/volumes/prune")
    def prune(req: Request) -> JSON:
        return JSON(volumes.prune(req.filters()))
