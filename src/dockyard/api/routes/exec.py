"""Exec routes: create, start (hijacked unless detached), inspect, resize."""

from __future__ import annotations

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty
from dockyard.api.router import Router
from dockyard.api.routes.container_io import stream_content_type


def register(r: Router, s: Services) -> None:
    @r.post("/containers/{id}/exec")
    def create(req: Request) -> JSON:
        body = req.json({}) or {}
        return JSON({"Id": s.execs.create(req.params["id"], body)}, 201)

    @r.post("/exec/{id}/start")
    def start(req: Request) -> Empty | None:
        body = req.json({}) or {}
        execs = s.execs
        rec = execs.check_startable(req.params["id"])
        detach = bool(body.get("Detach"))
        tty = bool(body.get("Tty")) or rec.tty
        size = body.get("ConsoleSize")
        if detach:
            execs.start(rec.id, True, tty, None, size)
            return Empty(200)
        conn = req.hijack(stream_content_type(req, tty))
        try:
            execs.start(rec.id, False, tty, conn, size)
        except OSError:
            pass
        return None

    @r.get("/exec/{id}/json")
    def inspect(req: Request) -> JSON:
        return JSON(s.execs.inspect(req.params["id"]))

    @r.post("/exec/{id}/resize")
    def resize(req: Request) -> Empty:
        s.execs.resize(req.params["id"], req.q_int("h", 0) or 0, req.q_int("w", 0) or 0)
        return Empty(200)
