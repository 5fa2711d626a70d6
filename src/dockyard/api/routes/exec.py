"""Exec routes: create, start (hijacked unless detached), inspect, resize."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty
from dockyard.api.router import Router
from dockyard.api.routes.container_io import stream_content_type

if TYPE_CHECKING:
    from dockyard.containers.execs import ExecRecord
    from dockyard.containers.ports import ClientStream


class ExecCalls(Protocol):
    """The calls these routes make (the exec service implements them; mypy checks it in ``register``)."""

    def create(self, container_id_or_name: str, body: dict[str, Any]) -> str: ...

    def check_startable(self, exec_id: str) -> ExecRecord: ...

    def start(self, exec_id: str, detach: bool, tty: bool, conn: ClientStream | None,
              console_size: list[int] | None = None, raw_output: bool | None = None) -> None: ...

    def inspect(self, exec_id: str) -> dict[str, Any]: ...

    def resize(self, exec_id: str, h: int, w: int) -> None: ...


def register(r: Router, s: Services) -> None:
    execs: ExecCalls = s.execs

    @r.post("/containers/{id}/exec")
    def create(req: Request) -> JSON:
        body = req.json({}) or {}
        return JSON({"Id": execs.create(req.params["id"], body)}, 201)

    @r.post("/exec/{id}/start")
    def start(req: Request) -> Empty | None:
        body = req.json({}) or {}
        rec = execs.check_startable(req.params["id"])
        detach = bool(body.get("Detach"))
        tty = bool(body.get("Tty")) or rec.tty
        size = body.get("ConsoleSize")
        if detach:
            execs.start(rec.id, True, tty, None, size)
            return Empty(200)
        # docker frames the output unless the start request says Tty, whatever the exec was created with
        raw = bool(body.get("Tty"))
        conn = req.hijack(stream_content_type(req, raw))
        try:
            execs.start(rec.id, False, tty, conn, size, raw_output=raw)
        except OSError:
            pass
        return None

    @r.get("/exec/{id}/json")
    def inspect(req: Request) -> JSON:
        return JSON(execs.inspect(req.params["id"]))

    @r.post("/exec/{id}/resize")
    def resize(req: Request) -> Empty:
        execs.resize(req.params["id"], req.q_int("h", 0) or 0, req.q_int("w", 0) or 0)
        return Empty(200)
