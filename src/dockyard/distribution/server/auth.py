"""Who may do what: htpasswd users (bcrypt, as ``htpasswd -B`` writes them), Basic auth, and Bearer tokens.

Bearer tokens are JWTs signed by the server's ``--token-key`` (RS256 for an RSA key, ES256 for a P-256 key)
and carry the docker token spec's ``access`` claim. The built-in token endpoint (at the path of
``--token-realm``) checks an htpasswd user and grants the requested scopes the access rules allow.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import bcrypt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import RegistryError

ALL_ACTIONS = ("pull", "push", "delete")


class Htpasswd:
    """An htpasswd file of bcrypt entries. A verified (user, password) is remembered a minute: bcrypt is slow
    on purpose and a client sends its credentials with every request."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._mtime = -1.0
        self._ok: dict[tuple[str, bytes], float] = {}
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        st = os.stat(self.path)
        if st.st_mtime == self._mtime:
            return
        users = {}
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#") or ":" not in line:
                    continue
                user, _, h = line.partition(":")
                if h.startswith(("$2y$", "$2a$", "$2b$")):
                    users[user] = h.encode()
        with self._lock:
            self._users, self._mtime, self._ok = users, st.st_mtime, {}

    def check(self, user: str, password: str) -> bool:
        try:
            self._load()
        except OSError:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        now = time.monotonic()
        with self._lock:
            if self._ok.get(key, 0) > now:
                return True
            h = self._users.get(user)
        if h is None:
            return False
        try:
            ok = bcrypt.checkpw(password.encode(), h)
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._ok[key] = now + 60
        return ok


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, _, pw = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, pw


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(s: str) -> Scope | None:
    """``repository:library/busybox:pull,push`` (the name may hold a port-less host with colons: rsplit)."""
    typ, _, rest = s.partition(":")
    name, _, actions = rest.rpartition(":")
    if not typ or not name:
        return None
    return Scope(typ, name, tuple(a for a in actions.split(",") if a))


@dataclass
class AccessRule:
    """One entry of the token endpoint's access rules: an account ("*" any authenticated user, "" anonymous),
    a repository name pattern (fnmatch) and the actions granted."""

    account: str
    name: str
    actions: tuple[str, ...]


@dataclass
class AccessPolicy:
    rules: list[AccessRule] = field(default_factory=list)

    def granted(self, account: str, scope: Scope) -> tuple[str, ...]:
        if not self.rules:  # default: an authenticated user may do everything, anonymous nothing
            allowed: set[str] = set(ALL_ACTIONS) | {"*"} if account else set()
        else:
            allowed = set()
            for r in self.rules:
                if (r.account == account or (r.account == "*" and account)) and fnmatch.fnmatchcase(scope.name, r.name):
                    allowed |= set(ALL_ACTIONS) | {"*"} if "*" in r.actions else set(r.actions)
        return tuple(a for a in scope.actions if a in allowed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class TokenSigner:
    """Signs and verifies the registry's JWTs with one key pair (the private key may be absent: verify only,
    for tokens of an outside token server whose certificate is given)."""

    def __init__(self, key_path: str) -> None:
        with open(key_path, "rb") as f:
            pem = f.read()
        self.private: Any = None
        if b"PRIVATE KEY" in pem:
            self.private = serialization.load_pem_private_key(pem, password=None)
            self.public: Any = self.private.public_key()
        else:
            self.public = x509.load_pem_x509_certificate(pem).public_key()
        if isinstance(self.public, rsa.RSAPublicKey):
            self.alg = "RS256"
        elif isinstance(self.public, ec.EllipticCurvePublicKey) and self.public.curve.name == "secp256r1":
            self.alg = "ES256"
        else:
            raise ValueError("token key must be RSA or EC P-256")
        der = self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(der).hexdigest()[:32]

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": self.alg, "kid": self.kid}
        signing_input = (_b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())).encode()
        if self.alg == "RS256":
            sig = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + _b64(sig)

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            h64, c64, s64 = token.split(".")
            header = json.loads(_unb64(h64))
            if header.get("alg") != self.alg:
                return None
            sig = _unb64(s64)
            data = (h64 + "." + c64).encode()
            if self.alg == "RS256":
                self.public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                if len(sig) != 64:
                    return None
                der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                self.public.verify(der, data, ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(c64))
        except (ValueError, InvalidSignature, TypeError):
            return None
        return claims if isinstance(claims, dict) else None


@dataclass
class TokenConfig:
    realm: str
    service: str
    issuer: str
    signer: TokenSigner
    expiration: int = 300


class Authenticator:
    """Answers "may this request do ``scope``?" for the configured mode: none, Basic (htpasswd) or Bearer."""

    def __init__(self, htpasswd: Htpasswd | None, token: TokenConfig | None,
                 policy: AccessPolicy | None = None, basic_realm: str = "Registry Realm") -> None:
        self.htpasswd = htpasswd
        self.token = token
        self.policy = policy or AccessPolicy()
        self.basic_realm = basic_realm

    @property
    def enabled(self) -> bool:
        return self.htpasswd is not None or self.token is not None

    def authorize(self, authorization: str | None, scope: Scope | None) -> str:
        """The account name ("" when auth is off); UNAUTHORIZED (with the challenge) otherwise."""
        if self.token is not None:
            return self._bearer(authorization, scope)
        if self.htpasswd is None:
            return ""
        creds = basic_credentials(authorization)
        if creds and self.htpasswd.check(*creds):
            if scope is not None and self.policy.rules and self.policy.granted(creds[0], scope) != scope.actions:
                raise RegistryError("DENIED", "requested access to the resource is denied",
                                    [{"Type": scope.type, "Name": scope.name, "Action": a} for a in scope.actions])
            return creds[0]
        raise RegistryError("UNAUTHORIZED", "authentication required",
                            headers=[("WWW-Authenticate", f'Basic realm="{self.basic_realm}"')])

    def _challenge(self, scope: Scope | None, error: str | None = None) -> RegistryError:
        assert self.token is not None
        ch = f'Bearer realm="{self.token.realm}",service="{self.token.service}"'
        if scope is not None:
            ch += f',scope="{scope}"'
        if error:
            ch += f',error="{error}"'
        detail = [{"Type": scope.type, "Name": scope.name, "Action": a} for a in scope.actions] if scope else None
        return RegistryError("UNAUTHORIZED", "authentication required", detail,
                             headers=[("WWW-Authenticate", ch)])

    def _bearer(self, authorization: str | None, scope: Scope | None) -> str:
        assert self.token is not None
        if not authorization or authorization[:7].lower() != "bearer ":
            raise self._challenge(scope)
        claims = self.token.signer.verify(authorization[7:].strip())
        now = time.time()
        if (claims is None or claims.get("iss") != self.token.issuer or claims.get("aud") != self.token.service
                or not isinstance(claims.get("exp"), int | float) or claims["exp"] < now
                or claims.get("nbf", 0) > now + 60):
            raise self._challenge(scope, "invalid_token")
        if scope is not None:
            have: set[str] = set()
            for a in claims.get("access") or []:
                if isinstance(a, dict) and a.get("type") == scope.type and a.get("name") == scope.name:
                    have |= set(a.get("actions") or [])
            if not all(x in have or "*" in have for x in scope.actions):
                raise self._challenge(scope, "insufficient_scope")
        return str(claims.get("sub", ""))

    def issue(self, authorization: str | None, service: str, scopes: list[str]) -> dict[str, Any]:
        """The token endpoint: checks the user (anonymous when no credentials), grants what the rules allow."""
        creds = basic_credentials(authorization)
        if creds is None and authorization:
            raise RegistryError("UNAUTHORIZED", "authentication required")
        return self.issue_for(creds, service, scopes)

    def issue_for(self, creds: tuple[str, str] | None, service: str, scopes: list[str]) -> dict[str, Any]:
        """A token for ``creds`` (None: anonymous); also the OAuth2 password grant's answer."""
        assert self.token is not None
        account = ""
        if creds is not None:
            if self.htpasswd is None or not self.htpasswd.check(*creds):
                raise RegistryError("UNAUTHORIZED", "authentication required",
                                    headers=[("WWW-Authenticate", f'Basic realm="{self.basic_realm}"')])
            account = creds[0]
        if service and service != self.token.service:
            raise RegistryError("DENIED", f"unknown service {service!r}")
        access = []
        for s in scopes:
            for part in s.split(" "):
                sc = parse_scope(part)
                if sc is None:
                    continue
                actions = self.policy.granted(account, sc)
                access.append({"type": sc.type, "name": sc.name, "actions": list(actions)})
        now = int(time.time())
        claims = {"iss": self.token.issuer, "sub": account, "aud": self.token.service, "exp": now + self.token.expiration,
                  "nbf": now - 10, "iat": now, "jti": _b64(os.urandom(12)), "access": access}
        tok = self.token.signer.sign(claims)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": tok, "access_token": tok, "expires_in": self.token.expiration, "issued_at": issued}
