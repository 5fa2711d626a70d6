"""Container routes: create, list, inspect, start/stop/restart/kill, pause, wait, delete, rename, update, top,
changes, prune — thin translations of HTTP to ContainerService calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty, Stream
from dockyard.api.router import Router
from dockyard.containers import filters as filters_mod
from dockyard.containers import top as top_mod
from dockyard.containers import views
from dockyard.errors import Conflict, InvalidParameter, NotFound


def register(r: Router, s: Services) -> None:
    svc = s.containers

    @r.post("/containers/create")
    def create(req: Request) -> JSON:
        body = req.json()
        if body is None:
            raise InvalidParameter("Config cannot be empty in order to create a container")
        platform = req.q("platform")
        if platform and not platform.startswith("linux"):
            raise InvalidParameter(f"invalid platform: {platform}")
        cid, warnings = svc.create(req.q("name"), body)
        return JSON({"Id": cid, "Warnings": warnings}, 201)

    @r.get("/containers/json")
    def list_(req: Request) -> JSON:
        chosen = filters_mod.select(svc, req.q_bool("all"), req.q_int("limit"), req.filters())
        size = req.q_bool("size")
        return JSON([views.summary(svc, c, with_size=size) for c in chosen])

    @r.get("/containers/{id}/json")
    def inspect(req: Request) -> JSON:
        return JSON(views.inspect(svc, svc.get(req.params["id"]), size=req.q_bool("size")))

    @r.post("/containers/{id}/start")
    def start(req: Request) -> Empty:
        if req.q("checkpoint"):
            raise InvalidParameter("checkpoints are not supported")
        svc.start(req.params["id"])
        return Empty(204)

    @r.post("/containers/{id}/stop")
    def stop(req: Request) -> Empty:
        svc.stop(req.params["id"], req.q_int("t"), req.q("signal"))
        return Empty(204)

    @r.post("/containers/{id}/restart")
    def restart(req: Request) -> Empty:
        svc.restart(req.params["id"], req.q_int("t"), req.q("signal"))
        return Empty(204)

    @r.post("/containers/{id}/kill")
    def kill(req: Request) -> Empty:
        svc.kill(req.params["id"], req.q("signal"))
        return Empty(204)

    @r.post("/containers/{id}/pause")
    def pause(req: Request) -> Empty:
        svc.pause(req.params["id"])
        return Empty(204)

    @r.post("/containers/{id}/unpause")
    def unpause(req: Request) -> Empty:
        svc.unpause(req.params["id"])
        return Empty(204)

    @r.post("/containers/{id}/wait")
    def wait(req: Request) -> Stream:
        c = svc.get(req.params["id"])
        condition = req.q("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter(f"invalid condition: {condition!r}")

        def gen() -> Iterator[bytes]:
            code, error = svc.wait(c, condition, alive=lambda: req.peer_alive())
            body: dict[str, Any] = {"StatusCode": code}
            body["Error"] = {"Message": error} if error else None
            yield json.dumps(body).encode() + b"\n"

        return Stream(gen(), "application/json")

    @r.delete("/containers/{id}")
    def delete(req: Request) -> Empty:
        if req.q_bool("link"):
            svc.remove_link(req.params["id"])
            return Empty(204)
        svc.remove(req.params["id"], force=req.q_bool("force"), volumes=req.q_bool("v"))
        return Empty(204)

    @r.delete("/containers/{id}/{alias}")
    def delete_link(req: Request) -> Empty:
        """docker-py's remove_container("parent/alias", link=True): a name with a slash is a link."""
        if not req.q_bool("link"):
            raise NotFound(f"No such container: {req.params['id']}/{req.params['alias']}")
        svc.remove_link(f"{req.params['id']}/{req.params['alias']}")
        return Empty(204)

    @r.post("/containers/{id}/rename")
    def rename(req: Request) -> Empty:
        svc.rename(req.params["id"], req.q("name") or "")
        return Empty(204)

    @r.post("/containers/{id}/update")
    def update(req: Request) -> JSON:
        warnings = svc.update(req.params["id"], req.json({}))
        return JSON({"Warnings": warnings})

    @r.get("/containers/{id}/top")
    def top(req: Request) -> JSON:
        c = svc.get(req.params["id"])
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        pids = svc.runtime_for(c).ps(c.id)
        return JSON(top_mod.top(pids, req.q("ps_args")))

    @r.get("/containers/{id}/changes")
    def changes(req: Request) -> JSON:
        return JSON(svc.changes(req.params["id"]) or None)

    @r.post("/containers/prune")
    def prune(req: Request) -> JSON:
        deleted: list[str] = []
        reclaimed = 0
        for c in filters_mod.prune_candidates(svc, req.filters()):
            size = svc.size(c)
            try:
                svc.remove(c.id, force=False, volumes=False)
            except Conflict:
                continue
            deleted.append(c.id)
            reclaimed += size
        s.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return JSON({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})
