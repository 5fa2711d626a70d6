"""Volume routes: create, list, inspect, remove, prune (local driver)."""

from __future__ import annotations

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty
from dockyard.api.router import Router
from dockyard.errors import InvalidParameter


def register(r: Router, s: Services) -> None:
    @r.get("/volumes")
    def list_(req: Request) -> JSON:
        return JSON(s.volumes.list_volumes(req.filters()))

    @r.post("/volumes/create")
    def create(req: Request) -> JSON:
        body = req.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("invalid volume create body")
        return JSON(s.volumes.create(body.get("Name") or "", body.get("Driver") or "local",
                                     body.get("Labels") or {}, body.get("DriverOpts") or {}), 201)

    @r.get("/volumes/{name}")
    def inspect(req: Request) -> JSON:
        return JSON(s.volumes.inspect(req.params["name"]))

    @r.delete("/volumes/{name}")
    def remove(req: Request) -> Empty:
        s.volumes.remove(req.params["name"], force=req.q_bool("force"))
        return Empty(204)

    @r.post("/volumes/prune")
    def prune(req: Request) -> JSON:
        return JSON(s.volumes.prune(req.filters()))
