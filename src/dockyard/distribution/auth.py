"""Registry authentication as docker's client does it: the ``WWW-Authenticate`` challenge, Basic credentials,
Bearer tokens from the challenge's realm (cached until they expire, fetched again when the registry says no),
OAuth2 refresh tokens (``identitytoken``) and ``X-Registry-Auth`` decoding.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token (``identitytoken`` in config.json)
    registry_token: str = ""  # a bearer token to send as is

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


ANONYMOUS = Credentials()


def decode_registry_auth(header: str | None) -> Credentials:
    """``X-Registry-Auth``: base64url(JSON AuthConfig); empty or ``{}`` means anonymous. Like dockerd, a header
    it cannot decode is treated as no credentials at all."""
    if not header or not header.strip():
        return ANONYMOUS
    raw = header.strip()
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        obj = json.loads(data)
    except (ValueError, TypeError):
        return ANONYMOUS
    return credentials_from_json(obj)


def credentials_from_json(obj: Any) -> Credentials:
    if not isinstance(obj, dict):
        return ANONYMOUS
    user = str(obj.get("username") or "")
    pw = str(obj.get("password") or "")
    auth = obj.get("auth")
    if auth and not user:
        try:
            user, _, pw = base64.b64decode(str(auth)).decode().partition(":")
        except ValueError:
            raise InvalidParameter("invalid auth configuration") from None
    return Credentials(user, pw, str(obj.get("identitytoken") or ""), str(obj.get("registrytoken") or ""))


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: basic, bearer
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """``Bearer realm="…",service="…",scope="…"`` (several challenges may share one header)."""
    out: list[Challenge] = []
    s = header.strip()
    while s:
        m = re.match(r"([A-Za-z]+)\s*", s)
        if not m:
            break
        scheme = m.group(1).lower()
        s = s[m.end():]
        params: dict[str, str] = {}
        while True:
            pm = _PARAM_RE.match(s)
            if not pm or not pm.group(0).strip():
                break
            params[pm.group(1).lower()] = (pm.group(2) if pm.group(2) is not None else pm.group(3) or "").replace(
                '\\"', '"')
            s = s[pm.end():]
        out.append(Challenge(scheme, params))
        s = s.lstrip(", ")
    return out


@dataclass
class Token:
    value: str
    expires: float
    refresh_token: str = ""


class TokenCache:
    """Bearer tokens by (realm, service, scopes, identity), shared by every pull and push of the daemon."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str, str], Token] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        with self._lock:
            tok = self._tokens.get(key)
            if tok is None or tok.expires <= time.time():
                return None
            return tok.value

    def put(self, key: tuple[str, str, str, str], tok: Token) -> None:
        with self._lock:
            self._tokens[key] = tok

    def drop(self, key: tuple[str, str, str, str]) -> None:
        with self._lock:
            self._tokens.pop(key, None)


def token_lifetime(body: dict[str, Any]) -> float:
    """Seconds a token may be used: ``expires_in`` (default 60, as docker), minus a small margin."""
    try:
        expires_in = float(body.get("expires_in") or 60)
    except (TypeError, ValueError):
        expires_in = 60.0
    return max(1.0, expires_in - min(5.0, expires_in / 10))


def basic_header(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
