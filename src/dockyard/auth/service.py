"""AuthService: the one object the daemon wires for access control (tokens, clients, policy, revocations).

The API's request hook asks it three things: who is this bearer (`authenticate`), may they make this request
(`authorize`, scope then policy), and the token endpoint's answer (`token`). SIGHUP calls `reload`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.auth import keys, policy, scopes, token_endpoint
from dockyard.auth.clients import Client, ClientRegistry, ClientsFileError, hash_secret, valid_id
from dockyard.auth.revocations import Revocations
from dockyard.auth.tokens import JWKS, Claims, InvalidToken, TokenIssuer, TokenVerifier
from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound

log = logging.getLogger("dockyard.auth")
MAX_TTL = 30 * 86400


@dataclass(frozen=True)
class AuthSettings:
    data_root: str
    clients_file: str | None = None
    policy_file: str | None = None
    audience: str = "dockyard"
    external_issuer: str | None = None
    jwks_file: str | None = None
    external_audience: str | None = None
    token_ttl: int = 3600


class Denied(Forbidden):
    """A request the scopes or the policy refuse (HTTP 403)."""


class AuthService:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        state = os.path.join(settings.data_root, "auth")
        os.makedirs(state, mode=0o700, exist_ok=True)
        self.clients = ClientRegistry(settings.clients_file)
        self.policy = policy.load(settings.policy_file)
        self._revocations = Revocations(os.path.join(state, "revoked.json"))
        self._issuer = TokenIssuer(keys.load_or_create(os.path.join(state, "signing-key.pem")), settings.audience)
        jwks = JWKS(settings.jwks_file) if settings.jwks_file else None
        self._verifier = TokenVerifier(self._issuer, self._revocations, settings.external_issuer, jwks,
                                       settings.external_audience)
        self._reload_lock = threading.Lock()

    # -- the token endpoint ------------------------------------------------------------------------
    def token(self, content_type: str | None, body: bytes,
              authorization: str | None) -> token_endpoint.TokenAnswer:
        return token_endpoint.handle(content_type, body, authorization, self.clients.check, self._issue)

    def _issue(self, client: Client, granted: frozenset[str]) -> tuple[str, int]:
        ttl = min(client.token_ttl or self.settings.token_ttl, MAX_TTL)
        token, _ = self._issuer.issue(client.id, granted, ttl)
        return token, ttl

    # -- requests ----------------------------------------------------------------------------------
    def authenticate(self, token: str) -> Claims:
        """The verified claims of a bearer token; raises InvalidToken saying why not."""
        return self._verifier.verify(token)

    def authorize(self, claims: Claims, method: str, path: str, body: Any = None,
                  query: dict[str, str] | None = None) -> None:
        """Scope first, then (for non-admin clients) the policy on the bodies (a build: the query) it reads."""
        if not scopes.permits(claims.scopes, method, path):
            raise Denied(f"authorization denied: {method} {path} needs scope {scopes.needed(method, path)}, "
                         f"the token has {' '.join(sorted(claims.scopes)) or 'none'}")
        if "admin" in claims.scopes:
            return
        kind = policy.kind_of(method, path)
        if kind is not None:
            try:
                self.policy.check(kind, query if kind == "build" else body)
            except policy.PolicyDenied as e:
                raise Denied(f"authorization denied by policy rule {e.rule}: {e}") from None

    @staticmethod
    def reads_body(method: str, path: str) -> bool:
        """Whether the policy needs the JSON body (a build's body is its context: never read here)."""
        return policy.kind_of(method, path) not in (None, "build")

    # -- administration ----------------------------------------------------------------------------
    def revoke(self, target: str) -> dict[str, Any]:
        """Revoke one token (by jti) or every token a client holds so far (by client id)."""
        if _looks_like_jti(target) and self.clients.get(target) is None:
            self._revocations.revoke_jti(target, int(time.time()) + MAX_TTL)
            log.info("auth: token %s revoked", target)
            return {"Revoked": "token", "ID": target}
        self._revocations.revoke_client(target)
        log.info("auth: tokens of client %s revoked", target)
        return {"Revoked": "client", "ID": target}

    def clients_list(self) -> list[dict[str, Any]]:
        return [{"ID": c.id, "Scopes": sorted(c.scopes), "TokenTTL": c.token_ttl} for c in self.clients.all()]

    def client_add(self, client_id: str, secret: str | None, wanted: list[str], token_ttl: int | None = None,
                   cost: int = 12) -> dict[str, Any]:
        """Add a client to the clients file; without a secret one is made and returned (this once only)."""
        if not valid_id(client_id):
            raise InvalidParameter(f"invalid client id {client_id!r}: letters, digits and ._@- only")
        granted = frozenset(wanted)
        if not granted:
            raise InvalidParameter(f"a client needs at least one scope ({', '.join(scopes.SCOPES)})")
        bad = sorted(granted - set(scopes.SCOPES))
        if bad:
            raise InvalidParameter(f"unknown scope {bad[0]!r} (known: {', '.join(scopes.SCOPES)})")
        if token_ttl is not None and (isinstance(token_ttl, bool) or not isinstance(token_ttl, int)
                                      or token_ttl <= 0):
            raise InvalidParameter("the token lifetime must be a positive number of seconds")
        if isinstance(cost, bool) or not isinstance(cost, int) or not 4 <= cost <= 16:
            raise InvalidParameter("the bcrypt cost must be between 4 and 16")
        if secret is not None and not isinstance(secret, str):
            raise InvalidParameter("the secret must be a string")
        made = secrets.token_urlsafe(32) if not secret else None
        hashed = hash_secret(secret or made or "", cost).encode()

        def add(current: dict[str, Client]) -> None:
            if client_id in current:
                raise Conflict(f"client {client_id} already exists")
            current[client_id] = Client(client_id, hashed, granted, token_ttl)

        self._edit(add)
        log.info("auth: client %s added (scope %s)", client_id, " ".join(sorted(granted)))
        return {"ID": client_id, **({"Secret": made} if made else {})}

    def client_remove(self, client_id: str) -> None:
        def remove(current: dict[str, Client]) -> None:
            if current.pop(client_id, None) is None:
                raise NotFound(f"no such client: {client_id}")

        self._edit(remove)
        log.info("auth: client %s removed", client_id)

    def _edit(self, change: Callable[[dict[str, Client]], None]) -> None:
        try:
            self.clients.edit(change)
        except ClientsFileError as e:
            raise Conflict(str(e)) from None

    def reload(self) -> None:
        """Read the clients and policy files again; a file that fails to parse leaves the old one in force."""
        with self._reload_lock:
            try:
                n = self.clients.reload()
                log.info("auth: %d clients loaded from %s", n, self.settings.clients_file)
            except Exception as e:  # noqa: BLE001 - a bad edit must not take access control down
                log.error("auth: clients file not reloaded: %s", e)
            try:
                self.policy = policy.load(self.settings.policy_file)
            except policy.PolicyError as e:
                log.error("auth: policy not reloaded: %s", e)

    def describe_policy(self) -> dict[str, Any]:
        return {"Source": self.policy.source, "Rules": self.policy.describe()}


def _looks_like_jti(target: str) -> bool:
    return len(target) == 32 and all(c in "0123456789abcdef" for c in target)


__all__ = ["AuthService", "AuthSettings", "Claims", "Denied", "InvalidToken"]
