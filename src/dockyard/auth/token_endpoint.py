"""`POST /token`: the client-credentials grant of RFC 6749 §4.4, independent of the HTTP server.

Credentials come as HTTP Basic (§2.3.1: id and secret form-urlencoded, then base64) or as `client_id` and
`client_secret` in the form body, never both. Errors are §5.2's JSON objects; `invalid_client` is a 401 with a
Basic challenge. Answers carry `Cache-Control: no-store` as §5.1 requires.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote_plus

from dockyard.auth.clients import Client

log = logging.getLogger("dockyard.auth")
MAX_BODY = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class TokenAnswer:
    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode()


def _error(status: int, code: str, description: str, headers: dict[str, str] | None = None) -> TokenAnswer:
    return TokenAnswer(status, {"error": code, "error_description": description}, {**_NO_STORE, **(headers or {})})


def _basic(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed Basic credentials") from None
    cid, sep, secret = decoded.partition(":")
    if not sep:
        raise ValueError("malformed Basic credentials")
    return unquote_plus(cid), unquote_plus(secret)


def handle(content_type: str | None, body: bytes, authorization: str | None,
           check: Callable[[str, str], Client | None],
           issue: Callable[[Client, frozenset[str]], tuple[str, int]]) -> TokenAnswer:
    """Answer one token request; ``check`` verifies credentials, ``issue`` returns (token, expires_in)."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    if len(body) > MAX_BODY:
        return _error(400, "invalid_request", "the request body is too large")
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        return _error(400, "invalid_request", "the body is not a valid form")
    repeated = sorted(k for k, v in form.items() if len(v) > 1)
    if repeated:
        return _error(400, "invalid_request", f"parameter {repeated[0]} is given more than once")
    params = {k: v[0] for k, v in form.items()}
    grant = params.get("grant_type")
    if not grant:
        return _error(400, "invalid_request", "grant_type is missing")
    if grant != "client_credentials":
        return _error(400, "unsupported_grant_type", f"grant type {grant[:64]!r} is not supported")
    challenge = {"WWW-Authenticate": 'Basic realm="dockyard"'}
    try:
        basic = _basic(authorization) if authorization else None
    except ValueError as e:
        return _error(401, "invalid_client", str(e), challenge)
    in_body = "client_id" in params or "client_secret" in params
    if basic is not None and in_body:
        return _error(400, "invalid_request", "client credentials are given both in the header and the body")
    if basic is None:
        cid, secret = params.get("client_id", ""), params.get("client_secret", "")
    else:
        cid, secret = basic
    if not cid or not secret:
        return _error(401, "invalid_client", "client authentication is missing", challenge)
    client = check(cid, secret)
    if client is None:
        log.warning("token: client authentication failed for %r", cid[:128])
        return _error(401, "invalid_client", "client authentication failed", challenge)
    requested = params.get("scope")
    if requested is None or not requested.strip():
        granted = client.scopes
    else:
        wanted = frozenset(requested.split())
        extra = sorted(wanted - client.scopes)
        if extra:
            return _error(400, "invalid_scope", f"scope {extra[0][:64]!r} is not granted to this client")
        granted = wanted
    if not granted:
        return _error(400, "invalid_scope", "this client has no scopes")
    token, expires_in = issue(client, granted)
    log.info("token: issued to client %s (scope %s, %ds)", client.id, " ".join(sorted(granted)), expires_in)
    return TokenAnswer(200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
                             "scope": " ".join(sorted(granted))}, dict(_NO_STORE))
