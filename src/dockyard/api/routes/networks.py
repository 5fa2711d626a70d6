"""Network routes: /networks list, inspect, create, delete, connect, disconnect, prune."""

from __future__ import annotations

from typing import Any, Protocol

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty
from dockyard.api.router import Router
from dockyard.errors import InvalidParameter


class NetworkCalls(Protocol):
    """The calls these routes make (the network service implements them; mypy checks it in ``register``)."""

    def list(self, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def inspect(self, ref: str, *, verbose: bool = False) -> dict[str, Any]: ...

    def create(self, name: str, driver: str = "bridge", *, internal: bool = False, attachable: bool = False,
               ipam_cfg: dict[str, Any] | None = None, options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, enable_ipv6: bool = False,
               check_duplicate: bool = True) -> dict[str, str]: ...

    def remove(self, ref: str) -> None: ...

    def connect(self, net_ref: str, container_ref: str, endpoint_cfg: dict[str, Any] | None = None) -> None: ...

    def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None: ...

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]: ...


def register(r: Router, s: Services) -> None:
    calls: NetworkCalls = s.networks

    def networks() -> NetworkCalls:
        return calls

    @r.get("/networks")
    def list_networks(req: Request) -> JSON:
        return JSON(networks().list(req.filters()))

    @r.get("/networks/{id}")
    def inspect_network(req: Request) -> JSON:
        return JSON(networks().inspect(req.params["id"], verbose=req.q_bool("verbose")))

    @r.post("/networks/create")
    def create_network(req: Request) -> JSON:
        body = req.json({}) or {}
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: expected an object")
        name = body.get("Name") or ""
        if not name:
            raise InvalidParameter("network name must not be empty") if "Name" in body else \
                InvalidParameter("field Name is required")
        if body.get("Ingress"):
            raise InvalidParameter("ingress networks need swarm mode")
        if body.get("ConfigOnly") or body.get("ConfigFrom"):
            raise InvalidParameter("config-only networks are not supported by this engine")
        out = networks().create(
            name, body.get("Driver") or "bridge", internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")), ipam_cfg=body.get("IPAM") or {},
            options=body.get("Options") or {}, labels=body.get("Labels") or {},
            enable_ipv6=bool(body.get("EnableIPv6")), check_duplicate=body.get("CheckDuplicate", True))
        return JSON(out, 201)

    @r.delete("/networks/{id}")
    def remove_network(req: Request) -> Empty:
        networks().remove(req.params["id"])
        return Empty(204)

    @r.post("/networks/{id}/connect")
    def connect(req: Request) -> Empty:
        body = req.json({}) or {}
        container = body.get("Container") or ""
        if not container:
            raise InvalidParameter("no container specified")
        networks().connect(req.params["id"], container, body.get("EndpointConfig") or {})
        return Empty(200)

    @r.post("/networks/{id}/disconnect")
    def disconnect(req: Request) -> Empty:
        body = req.json({}) or {}
        container = body.get("Container") or ""
        if not container:
            raise InvalidParameter("no container specified")
        networks().disconnect(req.params["id"], container, bool(body.get("Force")))
        return Empty(200)

    @r.post("/networks/prune")
    def prune(req: Request) -> JSON:
        return JSON(networks().prune(req.filters()))
