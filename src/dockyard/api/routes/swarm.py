"""Swarm-mode endpoints: dockyard has no swarm, so they answer as a dockerd outside a swarm does (503)."""

from __future__ import annotations

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON
from dockyard.api.router import Router
from dockyard.errors import Unavailable

NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 'this node to swarm and try again.')

_PATHS = [
    "/swarm", "/swarm/init", "/swarm/join", "/swarm/leave", "/swarm/update", "/swarm/unlockkey", "/swarm/unlock",
    "/services", "/services/create", "/services/{id}", "/services/{id}/update", "/services/{id}/logs",
    "/nodes", "/nodes/{id}", "/nodes/{id}/update", "/tasks", "/tasks/{id}", "/tasks/{id}/logs",
    "/secrets", "/secrets/create", "/secrets/{id}", "/secrets/{id}/update",
    "/configs", "/configs/create", "/configs/{id}", "/configs/{id}/update",
]


def _refuse(req: Request) -> JSON:
    raise Unavailable(NOT_A_MANAGER)


def register(r: Router, s: Services) -> None:
    for path in _PATHS:
        for method in ("GET", "POST", "DELETE"):
            r.add(method, path, _refuse)

    @r.get("/plugins")
    def plugins(req: Request) -> JSON:
        return JSON([])

    @r.get("/plugins/privileges")
    def plugin_privileges(req: Request) -> JSON:
        return JSON([])
