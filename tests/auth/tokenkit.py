"""Helpers for the access-control tests: a clients file, an external issuer's key and JWKS, forged tokens."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth import clients as clients_mod
from dockyard.auth.keys import public_jwk


def write_clients(path: str, entries: dict[str, tuple[str, list[str]] | tuple[str, list[str], int]]) -> None:
    """entries: id -> (secret, scopes[, token_ttl]); secrets hashed with a low bcrypt cost (tests only)."""
    out = {}
    for cid, e in entries.items():
        ttl = e[2] if len(e) > 2 else None  # type: ignore[misc]
        out[cid] = clients_mod.Client(cid, clients_mod.hash_secret(e[0], cost=4).encode(), frozenset(e[1]), ttl)
    clients_mod.write(path, out)


class ExternalIssuer:
    def __init__(self, issuer: str = "https://issuer.example", kid: str = "ext-1") -> None:
        self.issuer = issuer
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def write_jwks(self, path: str) -> None:
        jwk = dict(public_jwk(self.key.public_key()), kid=self.kid, use="sig", alg="ES256")
        with open(path, "w") as f:
            json.dump({"keys": [jwk]}, f)

    def token(self, sub: str, scope: str, aud: str, ttl: int = 300, **extra: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub, "aud": aud, "iat": now, "exp": now + ttl,
                  "jti": uuid.uuid4().hex, "scope": scope, **extra}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_copy(token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    claims = jwt.decode(token, options={"verify_signature": False})
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def resigned_with_other_key(token: str) -> str:
    """The same header and claims, signed by a key the daemon never saw."""
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, other, algorithm="ES256", headers={"kid": header.get("kid")})


def hs256_with_public_key(token: str, pem: bytes) -> str:
    """The classic key-confusion forgery: HMAC keyed with the verifier's public key."""
    claims = jwt.decode(token, options={"verify_signature": False})
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def basic(cid: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()


def tmpfile(d: str, name: str) -> str:
    return os.path.join(d, name)
