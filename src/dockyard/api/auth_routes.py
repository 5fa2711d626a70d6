"""Routes of access control: the OAuth2 token endpoint and the administration of tokens and policy.

`POST /token` is registered on the API's listeners (where the hook lets it through unauthenticated) or on a
listener of its own; the `/dockyard/auth/…` routes need the `admin` scope on a protected listener.
"""

from __future__ import annotations

from typing import Any, Protocol

from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty, Raw
from dockyard.api.router import Router
from dockyard.auth.token_endpoint import TokenAnswer
from dockyard.errors import InvalidParameter

TOKEN_PATH = "/token"


class TokenService(Protocol):
    def token(self, content_type: str | None, body: bytes, authorization: str | None) -> TokenAnswer: ...


class AuthAdmin(TokenService, Protocol):
    def revoke(self, target: str) -> dict[str, Any]: ...
    def clients_list(self) -> list[dict[str, Any]]: ...
    def client_add(self, client_id: str, secret: str | None, wanted: list[str], token_ttl: int | None = None,
                   cost: int = 12) -> dict[str, Any]: ...
    def client_remove(self, client_id: str) -> None: ...
    def reload(self) -> None: ...
    def describe_policy(self) -> dict[str, Any]: ...


def register_token(r: Router, tokens: TokenService) -> None:
    @r.post(TOKEN_PATH)
    def token(req: Request) -> Raw:
        body = req.body_stream().read(64 * 1024 + 1)
        answer = tokens.token(req.headers.get("Content-Type"), body, req.headers.get("Authorization"))
        return Raw(answer.encoded(), "application/json", answer.status, answer.headers)


def register_admin(r: Router, admin: AuthAdmin) -> None:
    @r.get("/dockyard/auth/policy")
    def policy(req: Request) -> JSON:
        return JSON(admin.describe_policy())

    @r.post("/dockyard/auth/revoke")
    def revoke(req: Request) -> JSON:
        target = req.q("target") or ""
        if not target.strip():
            raise InvalidParameter("revoke needs a token id (jti) or a client id")
        return JSON(admin.revoke(target.strip()))

    @r.get("/dockyard/auth/clients")
    def clients(req: Request) -> JSON:
        return JSON(admin.clients_list())

    @r.post("/dockyard/auth/clients")
    def client_add(req: Request) -> JSON:
        body = req.json({})
        if not isinstance(body, dict) or not isinstance(body.get("ID"), str):
            raise InvalidParameter("a client needs an ID")
        wanted = body.get("Scopes") or []
        if not isinstance(wanted, list) or not all(isinstance(x, str) for x in wanted):
            raise InvalidParameter("Scopes must be a list of scope names")
        return JSON(admin.client_add(body["ID"], body.get("Secret"), wanted, body.get("TokenTTL"),
                                     body.get("Cost", 12)), 201)

    @r.delete("/dockyard/auth/clients/{id}")
    def client_remove(req: Request) -> Empty:
        admin.client_remove(req.params["id"])
        return Empty()

    @r.post("/dockyard/auth/reload")
    def reload(req: Request) -> JSON:
        admin.reload()
        return JSON({"Reloaded": True})
