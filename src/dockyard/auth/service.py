"""AuthService: the one object the daemon wires for access control (tokens, clients, policy, revocations).

The API's request hook asks it three things: who is this bearer (`authenticate`), may they make this request
(`authorize`, scope then policy), and the token endpoint's answer (`token`). SIGHUP calls `reload`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from dockyard.auth import keys, policy, scopes, token_endpoint
from dockyard.auth.clients import Client, ClientRegistry
from dockyard.auth.revocations import Revocations
from dockyard.auth.tokens import JWKS, Claims, InvalidToken, TokenIssuer, TokenVerifier
from dockyard.errors import Forbidden

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

    def authorize(self, claims: Claims, method: str, path: str, body: Any = None) -> None:
        """Scope first, then (for non-admin clients) the policy on the bodies it reads."""
        if not scopes.permits(claims.scopes, method, path):
            raise Denied(f"authorization denied: {method} {path} needs scope {scopes.needed(method, path)}, "
                         f"the token has {' '.join(sorted(claims.scopes)) or 'none'}")
        if "admin" in claims.scopes:
            return
        kind = policy.kind_of(method, path)
        if kind is not None:
            try:
                self.policy.check(kind, body)
            except policy.PolicyDenied as e:
                raise Denied(f"authorization denied by policy rule {e.rule}: {e}") from None

    @staticmethod
    def reads_body(method: str, path: str) -> bool:
        return policy.kind_of(method, path) is not None

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
