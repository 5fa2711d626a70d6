"""Signed access tokens: issued by the daemon (ES256 JWTs) and verified, with an external issuer's too.

A token is verified once (signature, issuer, audience, times) and its claims are then cached by the token's
exact text until it expires, so each further request costs a dict lookup plus the expiry and revocation checks.
Only asymmetric algorithms are accepted, each only with a key of its own kind: `alg: none`, HMAC with a public
key as the secret and keys not in our key set all fail.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth import keys
from dockyard.auth import scopes as scope_mod
from dockyard.auth.revocations import Revocations
from dockyard.errors import Unauthorized

LOCAL_ISSUER = "dockyard"
_EXTERNAL_ALGS = ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "EdDSA"]
_CACHE_SIZE = 4096


class InvalidToken(Unauthorized):
    """Why a bearer token is refused; the text goes into the 401's error_description."""


@dataclass(frozen=True)
class Claims:
    sub: str
    scopes: frozenset[str]
    jti: str
    iat: int
    exp: int
    issuer: str


class TokenIssuer:
    def __init__(self, key: ec.EllipticCurvePrivateKey, audience: str, issuer: str = LOCAL_ISSUER) -> None:
        self._key = key
        self.kid = keys.key_id(key.public_key())
        self.audience = audience
        self.issuer = issuer

    def issue(self, sub: str, granted: frozenset[str], ttl: int) -> tuple[str, dict[str, object]]:
        now = int(time.time())
        claims: dict[str, object] = {"iss": self.issuer, "sub": sub, "aud": self.audience, "iat": now,
                                     "nbf": now, "exp": now + ttl, "jti": uuid.uuid4().hex,
                                     "scope": " ".join(sorted(granted))}
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid, "typ": "at+jwt"})
        return token, claims


class JWKS:
    """An external issuer's public keys, read from a JWKS file (no network: verification is offline)."""

    def __init__(self, path: str) -> None:
        try:
            with open(path) as f:
                data = json.load(f)
            keyset = jwt.PyJWKSet.from_dict(data)
        except (OSError, ValueError, jwt.PyJWTError) as e:
            raise ValueError(f"cannot read JWKS {path}: {e}") from None
        self.by_kid = {k.key_id: k for k in keyset.keys if k.key_id}
        self.keys = list(keyset.keys)

    def find(self, kid: str | None, alg: str) -> jwt.PyJWK:
        if kid is not None:
            if kid not in self.by_kid:
                raise InvalidToken("the token is signed by an unknown key")
            return self.by_kid[kid]
        if len(self.keys) == 1:
            return self.keys[0]
        raise InvalidToken("the token names no key id")


class TokenVerifier:
    def __init__(self, issuer: TokenIssuer, revocations: Revocations, external_issuer: str | None = None,
                 jwks: JWKS | None = None, external_audience: str | None = None) -> None:
        self._local = issuer
        self._local_pub = issuer._key.public_key()
        self._revocations = revocations
        self._ext_issuer = external_issuer
        self._jwks = jwks
        self._ext_audience = external_audience
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Claims:
        claims = self._cache.get(token)
        if claims is None:
            claims = self._verify_signed(token)
            with self._lock:
                self._cache[token] = claims
                if len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        if time.time() >= claims.exp:
            raise InvalidToken("the token has expired")
        if self._revocations.is_revoked(claims.jti, claims.sub, claims.iat):
            raise InvalidToken("the token has been revoked")
        return claims

    def _verify_signed(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise InvalidToken("unsigned tokens are not accepted")
        iss = unverified.get("iss")
        kid = header.get("kid")
        if iss == self._local.issuer:
            if alg != "ES256":
                raise InvalidToken(f"algorithm {alg} is not accepted")
            if kid is not None and kid != self._local.kid:
                raise InvalidToken("the token is signed by an unknown key")
            audience: str | None
            key: object = self._local_pub  # PyJWT refuses a key of another kind than the algorithm's
            audience, algs = self._local.audience, ["ES256"]
        elif self._jwks is not None and iss == self._ext_issuer:
            if alg not in _EXTERNAL_ALGS:
                raise InvalidToken(f"algorithm {alg} is not accepted")
            jwk = self._jwks.find(kid if isinstance(kid, str) else None, alg)
            key, audience, algs = jwk.key, self._ext_audience, [alg]
        else:
            raise InvalidToken("the token is from an unknown issuer")
        try:
            payload = jwt.decode(token, key, algorithms=algs, audience=audience, issuer=iss,  # type: ignore[arg-type]
                                 options={"require": ["exp", "iat", "sub"],
                                          "verify_aud": audience is not None})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is for another audience") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.PyJWTError as e:
            raise InvalidToken(f"the token is invalid: {e}") from None
        raw_scope = payload.get("scope", payload.get("scp"))
        if not isinstance(payload.get("sub"), str) or not isinstance(raw_scope, (str, list, type(None))):
            raise InvalidToken("the token is invalid: bad sub or scope claim")
        return Claims(sub=payload["sub"], scopes=scope_mod.parse(raw_scope), jti=str(payload.get("jti", "")),
                      iat=int(payload["iat"]), exp=int(payload["exp"]), issuer=str(iss))
