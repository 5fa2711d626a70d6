"""One repository on one registry endpoint: HTTP requests with authentication handled on the way.

A request goes out as is (or with a cached token); a 401 with a ``WWW-Authenticate`` challenge is answered
with Basic credentials or a Bearer token fetched from the realm for the repository's scope, and the request is
sent again once. Error bodies are the distribution spec's ``{"errors":[{code,message,detail}]}``, turned into
:class:`RegistryError` carrying docker's ``code: message`` text. Transport failures become
:class:`DialError` with Go's wording (``Get "URL": dial tcp HOST: connect: connection refused``), the text
docker users know.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as URLLib3Timeout

from ..errors import DockyardError
from .auth import ANONYMOUS, Credentials, Token, TokenCache, basic_header, parse_challenges, token_lifetime
from .transport import Endpoint, Transport

USER_AGENT = "docker/28.0.0 go/go1.23 git-commit/dockyard os/linux arch/amd64 UpstreamClient(dockyard)"

# errcode messages a code falls back to when the registry sends none (distribution's descriptors)
_CODE_MESSAGES = {
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "NAME_UNKNOWN": "repository name not known to registry",
    "BLOB_UNKNOWN": "blob unknown to registry",
    "TOOMANYREQUESTS": "too many requests",
    "UNSUPPORTED": "The operation is unsupported.",
}


class RegistryError(DockyardError):
    """An error the registry answered with: ``code`` (``MANIFEST_UNKNOWN``, ``DENIED``…), HTTP ``http_status``.
    Not one of the kinds docker maps to a status of its own, so the API answers 500 as dockerd does."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        text = f"{code.lower().replace('_', ' ')}: {message}" if code else message
        super().__init__(text)


class DialError(DockyardError):
    """The registry could not be reached (refused, unresolvable, TLS failure, cut connection)."""


def _go_dial_text(method: str, url: str, host: str, err: BaseException) -> str:
    prefix = f'{method.capitalize()} "{url}"'
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ConnectionRefusedError) or "Connection refused" in str(c) for c in chain):
        return f"{prefix}: dial tcp {host}: connect: connection refused"
    for cause in chain:
        if isinstance(cause, (TimeoutError, URLLib3Timeout)):
            return f"{prefix}: dial tcp {host}: i/o timeout"
        if isinstance(cause, (ssl.SSLError, SSLError)):
            text = str(cause)
            if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text or "wrong version" in text:
                return f"{prefix}: http: server gave HTTP response to HTTPS client"
            if "CERTIFICATE_VERIFY_FAILED" in text:
                return f"{prefix}: tls: failed to verify certificate: x509: certificate signed by unknown authority"
            return f"{prefix}: tls: {text}"
        if isinstance(cause, OSError) and "Name or service not known" in str(cause):
            return f"{prefix}: dial tcp: lookup {host.rsplit(':', 1)[0]}: no such host"
    return f"{prefix}: {err}"


def parse_errors(status: int, body: bytes, challenge: str = "") -> RegistryError:
    """distribution's ``HandleErrorResponse``: a Bearer challenge's ``error`` first (``insufficient_scope`` is
    DENIED, ``invalid_token`` UNAUTHORIZED), then the body's first error, else the status text."""
    for ch in parse_challenges(challenge) if challenge else []:
        if ch.scheme == "bearer" and ch.params.get("error") in ("invalid_token", "insufficient_scope"):
            code = "UNAUTHORIZED" if ch.params["error"] == "invalid_token" else "DENIED"
            return RegistryError(code, ch.params.get("error_description") or _CODE_MESSAGES[code], status)
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        errs = doc.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            code = str(errs[0].get("code") or "UNKNOWN")
            msg = str(errs[0].get("message") or _CODE_MESSAGES.get(code, "unknown error"))
            return RegistryError(code, msg, status)
        if "details" in doc or "error" in doc:
            msg = str(doc.get("details") or doc.get("error_description") or doc.get("error"))
            return RegistryError("UNAUTHORIZED" if status == 401 else "UNKNOWN", msg, status)
    if status == 401:
        return RegistryError("UNAUTHORIZED", _CODE_MESSAGES["UNAUTHORIZED"], status)
    if status == 404:
        return RegistryError("", "not found", status)
    text = body.decode("utf-8", "replace").strip()[:200]
    reason = urllib3.response.HTTPResponse(status=status).reason or ""
    return RegistryError("", f"unexpected status {status} {reason}".rstrip() + (f": {text}" if text else ""),
                         status)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    raw: urllib3.BaseHTTPResponse

    def read_all(self, limit: int = 8 << 20) -> bytes:
        data = self.raw.read(limit + 1, decode_content=False)
        self.raw.release_conn()
        if len(data) > limit:
            raise RegistryError("", "response too large", self.status)
        return bytes(data)

    def close(self) -> None:
        self.raw.release_conn()


class Pools:
    """HTTP connection pools per endpoint, shared by the daemon's pulls and pushes."""

    def __init__(self, transport: Transport, maxsize: int = 16) -> None:
        self.transport = transport
        self.maxsize = maxsize
        self._pools: dict[tuple[str, bool, int], urllib3.HTTPConnectionPool] = {}

    def get(self, ep: Endpoint) -> urllib3.HTTPConnectionPool:
        ctx = self.transport.ssl_context(ep) if ep.base.startswith("https://") else None
        key = (ep.base, ep.secure, id(ctx))
        pool = self._pools.get(key)
        if pool is None:
            u = urllib.parse.urlsplit(ep.base)
            timeout = urllib3.Timeout(connect=10.0, read=120.0)
            if u.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(u.hostname or "", u.port or 443, maxsize=self.maxsize, block=False,
                                                   ssl_context=ctx, timeout=timeout,
                                                   assert_hostname=None if ep.secure else False)
            else:
                pool = urllib3.HTTPConnectionPool(u.hostname or "", u.port or 80, maxsize=self.maxsize, block=False,
                                                  timeout=timeout)
            self._pools[key] = pool
        return pool


class RepoSession:
    """Requests for ``repo`` at ``endpoint`` with the given credentials and wanted actions."""

    def __init__(self, pools: Pools, tokens: TokenCache, endpoint: Endpoint, repo: str,
                 creds: Credentials = ANONYMOUS, actions: Iterable[str] = ("pull",),
                 extra_scopes: Iterable[str] = ()) -> None:
        self.pools = pools
        self.tokens = tokens
        self.endpoint = endpoint
        self.repo = repo
        self.creds = creds
        self.scopes = [f"repository:{repo}:{','.join(actions)}", *extra_scopes]
        self._auth_header: str | None = None
        self._challenge: Any = None  # the last Bearer challenge, to fetch a new token without a 401 first
        self.token_fetches = 0

    @property
    def base(self) -> str:
        return self.endpoint.base

    def url(self, path: str) -> str:
        return self.endpoint.base + path

    def _send(self, method: str, path: str, headers: dict[str, str], body: Any) -> Response:
        pool = self.pools.get(self.endpoint)
        target = path if path.startswith("/") else urllib.parse.urlsplit(path)._replace(scheme="", netloc="").geturl()
        try:
            raw = pool.urlopen(method, target, body=body, headers=headers, preload_content=False, redirect=False,
                               retries=False, decode_content=False, chunked=False)
        except (NewConnectionError, ProtocolError, URLLib3Error, OSError) as e:
            raise DialError(_go_dial_text(method, self.url(target), self.endpoint.host, e)) from e
        return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw)

    def _token_key(self) -> tuple[str, str, str, str] | None:
        ch = self._challenge
        if ch is None:
            return None
        ident = self.creds.identity_token or self.creds.username
        return (ch.params.get("realm", ""), ch.params.get("service", ""), " ".join(self.scopes), ident)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None,
                rewindable: bool = True) -> Response:
        """Send; on 401 answer the challenge and send again (once). ``rewindable=False``: the body is a stream
        that cannot be sent twice, so authenticate first with a cheap GET of ``/v2/``."""
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        if self._auth_header is None and self._challenge is not None:
            self._auth_header = self._fetch_token(self._challenge)
        if not rewindable and self._auth_header is None:
            self.authenticate()
        if self._auth_header:
            hdrs["Authorization"] = self._auth_header
        resp = self._send(method, path, hdrs, body)
        if resp.status != 401 or not rewindable:
            return resp
        challenge = resp.headers.get("www-authenticate", "")
        err_body = resp.read_all()
        had_auth = "Authorization" in hdrs
        new = self._answer(challenge, had_auth)
        if new is None:
            if not had_auth and not self.creds.username and any(
                    c.scheme == "basic" for c in parse_challenges(challenge)):
                raise RegistryError("", "no basic auth credentials", 401)
            raise parse_errors(401, err_body, challenge)
        hdrs["Authorization"] = new
        return self._send(method, path, hdrs, body)

    def authenticate(self) -> None:
        """``GET /v2/`` and answer its challenge, so the next request goes out authorised."""
        resp = self._send("GET", "/v2/", {"User-Agent": USER_AGENT}, None)
        body = resp.read_all()
        if resp.status == 401:
            self._answer(resp.headers.get("www-authenticate", ""), False)  # no answer: requests will say why
        elif resp.status >= 400 and resp.status != 404:
            raise parse_errors(resp.status, body)

    def _answer(self, challenge: str, had_auth: bool) -> str | None:
        for ch in parse_challenges(challenge):
            if ch.scheme == "basic":
                if self.creds.username and not had_auth:
                    self._auth_header = basic_header(self.creds)
                    return self._auth_header
                return None
            if ch.scheme == "bearer":
                if had_auth and ch.params.get("error") == "insufficient_scope":
                    return None
                self._challenge = ch
                key = self._token_key()
                if key is not None and had_auth:
                    self.tokens.drop(key)  # expired or revoked: fetch a fresh one
                self._auth_header = self._fetch_token(ch)
                return self._auth_header
        return None

    def refresh_auth(self) -> None:
        """Forget the token in use (a long transfer outlived it): the next request fetches a new one."""
        key = self._token_key()
        if key is not None:
            self.tokens.drop(key)
        self._auth_header = None

    def _fetch_token(self, ch: Any) -> str:
        if self.creds.registry_token:
            return "Bearer " + self.creds.registry_token
        key = self._token_key()
        assert key is not None
        cached = self.tokens.get(key)
        if cached:
            return "Bearer " + cached
        body = fetch_token(self.pools, ch.params, self.scopes, self.creds, self.endpoint)
        self.token_fetches += 1
        tok = str(body.get("token") or body.get("access_token") or "")
        if not tok:
            raise RegistryError("UNAUTHORIZED", "authorization server did not include a token in the response", 401)
        import time

        self.tokens.put(key, Token(tok, time.time() + token_lifetime(body), str(body.get("refresh_token") or "")))
        return "Bearer " + tok


def fetch_token(pools: Pools, params: dict[str, str], scopes: list[str], creds: Credentials, ep: Endpoint,
                offline: bool = False) -> dict[str, Any]:
    """Ask the realm for a token: OAuth2 POST with a refresh token (identitytoken), else GET with Basic
    credentials (``offline_token=true`` at login, to get a refresh token back)."""
    realm = params.get("realm", "")
    u = urllib.parse.urlsplit(realm)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise RegistryError("UNAUTHORIZED", f"invalid token realm {realm!r}", 401)
    service = params.get("service", "")
    rep = Endpoint(f"{u.scheme}://{u.netloc}", u.netloc, ep.secure or u.hostname != ep.host.rsplit(":", 1)[0])
    pool = pools.get(rep)
    hdrs = {"User-Agent": USER_AGENT}
    path = u.path or "/"
    try:
        if creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "service": service,
                    "client_id": "docker", "scope": " ".join(scopes)}
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            raw = pool.urlopen("POST", path, body=urllib.parse.urlencode(form), headers=hdrs, retries=False,
                               redirect=False)
        else:
            q = [("service", service)] if service else []
            q += [("scope", s) for s in scopes]
            if creds.username:
                q.append(("account", creds.username))
                hdrs["Authorization"] = basic_header(creds)
            if offline:
                q += [("offline_token", "true"), ("client_id", "docker")]
            query = (u.query + "&" if u.query else "") + urllib.parse.urlencode(q)
            raw = pool.urlopen("GET", f"{path}?{query}", headers=hdrs, retries=False, redirect=False)
    except (URLLib3Error, OSError) as e:
        raise DialError(_go_dial_text("GET", realm, u.netloc, e)) from e
    if raw.status != 200:
        raise parse_errors(raw.status, raw.data)
    try:
        body = json.loads(raw.data)
    except ValueError:
        raise RegistryError("UNAUTHORIZED", "unable to decode token response", 401) from None
    if not isinstance(body, dict):
        raise RegistryError("UNAUTHORIZED", "unable to decode token response", 401)
    return body
