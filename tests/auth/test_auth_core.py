"""Fast tests of the access-control core: clients file, token endpoint, token verification, scopes, policy."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from auth.tokenkit import (
    ExternalIssuer,
    basic,
    hs256_with_public_key,
    resigned_with_other_key,
    unsigned_copy,
    write_clients,
)
from dockyard.auth import clients as clients_mod
from dockyard.auth import policy, scopes
from dockyard.auth.service import AuthService, AuthSettings, Denied
from dockyard.auth.tokens import InvalidToken

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def svc(tmp_path: Any) -> AuthService:
    cf = str(tmp_path / "clients.yaml")
    write_clients(cf, {"ci": ("s3cret", ["read", "containers"]), "ro": ("ro-pw", ["read"]),
                       "root": ("admin-pw", ["admin"]), "short": ("pw", ["read"], 1)})
    ext = ExternalIssuer()
    ext.write_jwks(str(tmp_path / "jwks.json"))
    s = AuthService(AuthSettings(data_root=str(tmp_path / "data"), clients_file=cf,
                                 external_issuer=ext.issuer, jwks_file=str(tmp_path / "jwks.json"),
                                 external_audience="dockyard-ci"))
    s.ext = ext  # type: ignore[attr-defined]
    return s


def _token(svc: AuthService, body: str, auth: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    a = svc.token(FORM, body.encode(), auth)
    return a.status, json.loads(a.encoded()), a.headers


def _get(svc: AuthService, cid: str, secret: str, scope: str | None = None) -> str:
    body = f"grant_type=client_credentials&client_id={cid}&client_secret={secret}"
    if scope:
        body += f"&scope={scope}"
    status, doc, _ = _token(svc, body)
    assert status == 200, doc
    return str(doc["access_token"])


# -- the token endpoint ------------------------------------------------------------------------------------
def test_token_form_body(svc: AuthService) -> None:
    status, doc, headers = _token(svc, "client_id=ci&client_secret=s3cret&grant_type=client_credentials")
    assert status == 200
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 3600 and doc["scope"] == "containers read"
    assert headers["Cache-Control"] == "no-store"
    claims = svc.authenticate(doc["access_token"])
    assert claims.sub == "ci" and claims.scopes == {"read", "containers"} and len(claims.jti) == 32
    assert claims.exp - claims.iat == 3600


def test_token_basic_and_narrowed_scope(svc: AuthService) -> None:
    status, doc, _ = _token(svc, "grant_type=client_credentials&scope=read", basic("ci", "s3cret"))
    assert status == 200 and doc["scope"] == "read"
    assert svc.authenticate(doc["access_token"]).scopes == {"read"}


@pytest.mark.parametrize("body,auth,status,error", [
    ("grant_type=client_credentials&client_id=ci&client_secret=wrong", None, 401, "invalid_client"),
    ("grant_type=client_credentials&client_id=nobody&client_secret=s3cret", None, 401, "invalid_client"),
    ("grant_type=client_credentials", None, 401, "invalid_client"),
    ("grant_type=client_credentials", "Basic !!!", 401, "invalid_client"),
    ("grant_type=client_credentials", basic("ci", "nope"), 401, "invalid_client"),
    ("grant_type=password&client_id=ci&client_secret=s3cret", None, 400, "unsupported_grant_type"),
    ("client_id=ci&client_secret=s3cret", None, 400, "invalid_request"),
    ("grant_type=client_credentials&client_id=ci&client_secret=s3cret&scope=admin", None, 400, "invalid_scope"),
    ("grant_type=client_credentials&client_id=ci&client_secret=s3cret&scope=bogus", None, 400, "invalid_scope"),
    ("grant_type=client_credentials&grant_type=client_credentials&client_id=ci&client_secret=s3cret", None, 400,
     "invalid_request"),
    ("grant_type=client_credentials&client_id=ci&client_secret=s3cret", basic("ci", "s3cret"), 400,
     "invalid_request"),
])
def test_token_errors(svc: AuthService, body: str, auth: str | None, status: int, error: str) -> None:
    got, doc, headers = _token(svc, body, auth)
    assert (got, doc["error"]) == (status, error), doc
    assert "access_token" not in doc
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Basic")


def test_token_needs_a_form(svc: AuthService) -> None:
    a = svc.token("application/json", b'{"grant_type":"client_credentials"}', None)
    assert a.status == 400 and a.body["error"] == "invalid_request"


# -- verification -----------------------------------------------------------------------------------------
def test_expired_token(svc: AuthService) -> None:
    tok = _get(svc, "short", "pw")
    assert svc.authenticate(tok).sub == "short"  # cached now: expiry is still checked on every use
    time.sleep(1.1)
    with pytest.raises(InvalidToken, match="expired"):
        svc.authenticate(tok)


def test_revoke_by_jti_and_client(svc: AuthService) -> None:
    a, b = _get(svc, "ci", "s3cret"), _get(svc, "ci", "s3cret")
    other = _get(svc, "ro", "ro-pw")
    svc.authenticate(a)
    svc.revoke(svc.authenticate(a).jti)
    with pytest.raises(InvalidToken, match="revoked"):
        svc.authenticate(a)
    assert svc.authenticate(b).sub == "ci"
    svc.revoke("ci")
    with pytest.raises(InvalidToken, match="revoked"):
        svc.authenticate(b)
    assert svc.authenticate(other).sub == "ro"
    # revocations outlive the service (a daemon restart)
    again = AuthService(svc.settings)
    with pytest.raises(InvalidToken, match="revoked"):
        again.authenticate(a)


def test_forged_tokens(svc: AuthService, tmp_path: Any) -> None:
    good = _get(svc, "root", "admin-pw")
    with pytest.raises(InvalidToken, match="signature"):
        svc.authenticate(resigned_with_other_key(good))
    with pytest.raises(InvalidToken, match="unsigned"):
        svc.authenticate(unsigned_copy(good))
    pem = svc._issuer._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InvalidToken, match="algorithm"):
        svc.authenticate(hs256_with_public_key(good, pem))
    for junk in ("", "abc", "a.b.c", good[:-4], good + "x", "e30.e30.", good.replace(".", "", 1)):
        with pytest.raises(InvalidToken):
            svc.authenticate(junk)


def test_external_issuer(svc: AuthService) -> None:
    ext: ExternalIssuer = svc.ext  # type: ignore[attr-defined]
    claims = svc.authenticate(ext.token("build-bot", "read images", "dockyard-ci"))
    assert claims.sub == "build-bot" and claims.scopes == {"read", "images"}
    with pytest.raises(InvalidToken, match="audience"):
        svc.authenticate(ext.token("build-bot", "read", "someone-else"))
    with pytest.raises(InvalidToken, match="expired"):
        svc.authenticate(ext.token("build-bot", "read", "dockyard-ci", ttl=-10))
    stranger = ExternalIssuer(issuer=ext.issuer, kid=ext.kid)  # same names, another key
    with pytest.raises(InvalidToken, match="signature"):
        svc.authenticate(stranger.token("build-bot", "admin", "dockyard-ci"))
    with pytest.raises(InvalidToken, match="unknown key"):
        svc.authenticate(ExternalIssuer(issuer=ext.issuer, kid="other").token("x", "admin", "dockyard-ci"))
    with pytest.raises(InvalidToken, match="unknown issuer"):
        svc.authenticate(ExternalIssuer(issuer="https://evil.example").token("x", "admin", "dockyard-ci"))
    with pytest.raises(InvalidToken, match="unsigned"):
        svc.authenticate(unsigned_copy(ext.token("build-bot", "admin", "dockyard-ci")))


def test_local_token_needs_local_audience(svc: AuthService) -> None:
    # a local-issuer token signed by our key but naming another audience is refused
    import jwt as pyjwt

    now = int(time.time())
    tok = pyjwt.encode({"iss": "dockyard", "sub": "ci", "aud": "elsewhere", "iat": now, "exp": now + 60,
                        "jti": "x" * 32, "scope": "admin"}, svc._issuer._key, algorithm="ES256")
    with pytest.raises(InvalidToken, match="audience"):
        svc.authenticate(tok)


def test_verification_is_cached(svc: AuthService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token's signature is checked once; later uses check expiry and revocation only (bench/auth_bench.py
    times it)."""
    import jwt as pyjwt

    tok = _get(svc, "ci", "s3cret")
    first = svc.authenticate(tok)

    def no_decode(*a: Any, **kw: Any) -> Any:
        raise AssertionError("verified again")

    monkeypatch.setattr(pyjwt, "decode", no_decode)
    monkeypatch.setattr(pyjwt, "get_unverified_header", no_decode)
    assert svc.authenticate(tok) == first
    svc.revoke(first.jti)
    with pytest.raises(InvalidToken, match="revoked"):
        svc.authenticate(tok)


# -- scopes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("granted,method,path,ok", [
    ({"read"}, "GET", "/containers/json", True),
    ({"read"}, "HEAD", "/containers/x/archive", True),
    ({"read"}, "POST", "/containers/create", False),
    ({"read"}, "DELETE", "/images/busybox", False),
    ({"containers"}, "POST", "/containers/create", True),
    ({"containers"}, "POST", "/exec/abc/start", True),
    ({"containers"}, "GET", "/containers/x/logs", True),
    ({"containers"}, "GET", "/images/json", False),
    ({"containers"}, "POST", "/images/create", False),
    ({"containers"}, "GET", "/info", True),
    ({"images"}, "POST", "/images/load", True),
    ({"images"}, "POST", "/build", True),
    ({"networks"}, "POST", "/networks/create", True),
    ({"networks"}, "POST", "/volumes/create", False),
    ({"volumes"}, "DELETE", "/volumes/v1", True),
    ({"read", "containers"}, "POST", "/containers/prune", True),
    ({"containers"}, "POST", "/dockyard/auth/revoke", False),
    ({"read"}, "POST", "/swarm/init", False),
    ({"admin"}, "POST", "/dockyard/auth/revoke", True),
    ({"admin"}, "DELETE", "/containers/x", True),
    (set(), "GET", "/info", False),
])
def test_scopes(granted: set[str], method: str, path: str, ok: bool) -> None:
    assert scopes.permits(frozenset(granted), method, path) is ok


def test_scope_refusal_names_the_scope(svc: AuthService) -> None:
    claims = svc.authenticate(_get(svc, "ro", "ro-pw"))
    with pytest.raises(Denied, match="needs scope containers"):
        svc.authorize(claims, "POST", "/containers/create", {"Image": "busybox"})


# -- the policy -------------------------------------------------------------------------------------------
DENIED_BODIES = [
    ("privileged", {"HostConfig": {"Privileged": True}}),
    ("privileged", {"hostconfig": {"privileged": True}}),
    ("cap-add", {"HostConfig": {"CapAdd": ["SYS_ADMIN"]}}),
    ("host-bind", {"HostConfig": {"Binds": ["/:/host"]}}),
    ("host-bind", {"HostConfig": {"Binds": ["/etc/../:/host:ro"]}}),
    ("host-mount", {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]}}),
    ("network-host", {"HostConfig": {"NetworkMode": "host"}}),
    ("pid-host", {"HostConfig": {"PidMode": "host"}}),
    ("ipc-host", {"HostConfig": {"IpcMode": "host"}}),
    ("devices", {"HostConfig": {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]}}),
    ("security-opt-unconfined", {"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}}),
    ("security-opt-unconfined", {"HostConfig": {"SecurityOpt": ["no-new-privileges", "apparmor:unconfined"]}}),
    ("cgroup-parent", {"HostConfig": {"CgroupParent": "/"}}),
]


def test_build_policy_reads_the_query(svc: AuthService) -> None:
    import jwt as pyjwt

    now = int(time.time())
    tok = pyjwt.encode({"iss": "dockyard", "sub": "b", "aud": "dockyard", "iat": now, "exp": now + 60,
                        "jti": "b" * 32, "scope": "images"}, svc._issuer._key, algorithm="ES256")
    claims = svc.authenticate(tok)
    assert not svc.reads_body("POST", "/build")
    svc.authorize(claims, "POST", "/build", None, {"t": "x", "networkmode": "default"})
    with pytest.raises(Denied, match="policy rule build-network-host"):
        svc.authorize(claims, "POST", "/build", None, {"t": "x", "networkmode": "host"})


@pytest.mark.parametrize("rule,body", DENIED_BODIES)
def test_default_policy_denies(rule: str, body: dict[str, Any]) -> None:
    pol = policy.load(None)
    with pytest.raises(policy.PolicyDenied) as e:
        pol.check("container-create", {"Image": "busybox", **body})
    assert e.value.rule == rule


@pytest.mark.parametrize("body", [
    {"HostConfig": {"Privileged": False, "CapAdd": [], "Binds": ["vol1:/data"], "NetworkMode": "bridge"}},
    {"HostConfig": {"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v"}], "CapDrop": ["ALL"]}},
    {"HostConfig": {"SecurityOpt": ["no-new-privileges"], "Devices": []}},
    {},
])
def test_default_policy_allows(body: dict[str, Any]) -> None:
    policy.load(None).check("container-create", {"Image": "busybox", **body})


def test_policy_allowed_paths_and_exec(tmp_path: Any) -> None:
    allowed = tmp_path / "srv"
    allowed.mkdir()
    os.symlink("/", str(allowed / "escape"))
    pol = policy.parse(f"""
rules:
  - {{name: binds, field: "HostConfig.Binds[]", value: bind-source, allow_paths: ["{allowed}"]}}
  - {{name: exec-privileged, request: exec-create, field: Privileged, deny: [true]}}
""", "test")
    pol.check("container-create", {"HostConfig": {"Binds": [f"{allowed}/work:/w"]}})
    with pytest.raises(policy.PolicyDenied, match="outside the allowed paths"):
        pol.check("container-create", {"HostConfig": {"Binds": [f"{allowed}/escape/etc:/w"]}})
    with pytest.raises(policy.PolicyDenied):
        pol.check("container-create", {"HostConfig": {"Binds": [f"{allowed}/../x:/w"]}})
    with pytest.raises(policy.PolicyDenied):
        pol.check("exec-create", {"Cmd": ["sh"], "Privileged": True})
    pol.check("exec-create", {"Cmd": ["sh"]})


@pytest.mark.parametrize("text", [
    "rules: 3", "rules: [{name: a}]", "rules: [{name: a, field: X}]", "rules: [{name: a, field: X, deny: 1}]",
    "rules: [{name: a, field: X, deny_set: true, bogus: 1}]", "rules: [{name: a, field: 'X[', deny_set: true}]",
    "rules: [{name: a, field: X, request: nowhere, deny_set: true}]", "rules: [{name: a, field: X, deny_match: ['(']}]",
    "rules: [{name: a, field: X, allow_paths: [relative]}]", "{{{",
])
def test_bad_policy_files(text: str) -> None:
    with pytest.raises(policy.PolicyError):
        policy.parse(text, "test")


def test_admin_is_exempt_from_policy(svc: AuthService) -> None:
    body = {"Image": "busybox", "HostConfig": {"Privileged": True, "Binds": ["/:/host"]}}
    svc.authorize(svc.authenticate(_get(svc, "root", "admin-pw")), "POST", "/containers/create", body)
    ci = svc.authenticate(_get(svc, "ci", "s3cret"))
    with pytest.raises(Denied, match="policy rule privileged"):
        svc.authorize(ci, "POST", "/containers/create", body)


# -- the clients file -------------------------------------------------------------------------------------
def test_clients_file_reload(tmp_path: Any) -> None:
    cf = str(tmp_path / "c.yaml")
    write_clients(cf, {"a": ("pw", ["read"])})
    reg = clients_mod.ClientRegistry(cf)
    assert reg.check("a", "pw") is not None and reg.check("a", "no") is None and reg.check("b", "pw") is None
    write_clients(cf, {"b": ("pw2", ["admin"])})
    assert reg.check("b", "pw2") is None
    reg.reload()
    assert reg.check("b", "pw2") is not None and reg.check("a", "pw") is None
    assert oct(os.stat(cf).st_mode & 0o777) == "0o600"
    with open(cf, "w") as f:
        f.write("clients: {c: {secret: plain, scopes: [read]}}")
    with pytest.raises(clients_mod.ClientsFileError, match="bcrypt"):
        reg.reload()
    assert reg.check("b", "pw2") is not None  # the last good file stays in force


@pytest.mark.parametrize("text", [
    "clients: [1]", "clients: {'bad id': {secret: '$2b$04$x', scopes: []}}",
    "clients: {a: {secret: '$2b$04$x', scopes: [root]}}", "clients: {a: {scopes: [read]}}",
    "clients: {a: {secret: '$2b$04$x', scopes: [read], token_ttl: -1}}",
])
def test_bad_clients_files(text: str) -> None:
    with pytest.raises(clients_mod.ClientsFileError):
        clients_mod.parse(text)
