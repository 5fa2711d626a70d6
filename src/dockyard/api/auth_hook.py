"""The API's access-control hook: every request on a protected listener passes here before routing.

It reads `Authorization: Bearer …`, has the auth service verify the token and check scope and policy, and
answers 401 (with RFC 6750's `WWW-Authenticate: Bearer error="invalid_token"`) or 403 itself. Admitted
requests of token clients are attributed: the client id goes on the events they cause and, for mutating
requests, into the daemon log.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from dockyard.api.errors import http_status
from dockyard.api.request import Request
from dockyard.api.responses import JSON
from dockyard.auth.service import Claims, Denied, InvalidToken
from dockyard.errors import DockyardError
from dockyard.events.origin import request_client

log = logging.getLogger("dockyard.audit")
OPEN_PATHS = frozenset({"/_ping", "/version"})


class TokenAuthority(Protocol):
    def authenticate(self, token: str) -> Claims: ...
    def authorize(self, claims: Claims, method: str, path: str, body: Any = None,
                  query: dict[str, str] | None = None) -> None: ...
    def reads_body(self, method: str, path: str) -> bool: ...


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def _unauthorized(error: str, description: str) -> JSON:
    challenge = f'Bearer realm="dockyard", error="{error}", error_description="{_quoted(description)}"'
    return JSON({"message": description}, http_status(InvalidToken(description)) or 401,
                {"WWW-Authenticate": challenge})


class BearerGate:
    def __init__(self, authority: TokenAuthority, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self._authority = authority
        self._open = open_paths

    def admit(self, req: Request) -> JSON | None:
        """None to go on routing the request, else the refusal to send."""
        request_client.set(None)
        if req.path in self._open:
            return None
        header = req.headers.get("Authorization")
        if not header:
            return _unauthorized("invalid_token", "authentication required: no bearer token in the request")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return _unauthorized("invalid_token", "malformed Authorization header: expected 'Bearer <token>'")
        try:
            claims = self._authority.authenticate(token)
        except InvalidToken as e:
            return _unauthorized("invalid_token", f"invalid token: {e}")
        body: Any = None
        if self._authority.reads_body(req.method, req.path):
            try:
                body = req.json({})
            except DockyardError:
                body = None  # the handler answers the malformed body itself
        try:
            self._authority.authorize(claims, req.method, req.path, body,
                                      {k: v[-1] for k, v in req.query.items() if v})
        except Denied as e:
            log.warning("denied: client=%s %s %s: %s", claims.sub, req.method, req.path, e)
            return JSON({"message": str(e)}, http_status(e) or 403,
                        {"WWW-Authenticate": 'Bearer realm="dockyard", error="insufficient_scope"'})
        request_client.set(claims.sub)
        if req.method not in ("GET", "HEAD"):
            log.info("client=%s jti=%s %s %s", claims.sub, claims.jti, req.method, req.path)
        return None
