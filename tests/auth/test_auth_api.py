"""Bearer tokens on the Engine API end to end: the seed's curl flow, scopes, the policy, every bad token."""

from __future__ import annotations

import json
import os
import signal
import time
from urllib.parse import quote

import pytest

from auth.authd import CLIENTS, EXT_AUDIENCE, AuthDaemon
from auth.tokenkit import ExternalIssuer, basic, resigned_with_other_key, unsigned_copy, write_clients
from helpers.daemon import wait_for

CREATE = {"Image": "busybox", "Cmd": ["true"]}


def test_seed_curl_flow(authd: AuthDaemon) -> None:
    r = authd.curl("-X", "POST", "-d", "client_id=ci&client_secret=ci-secret&grant_type=client_credentials",
                   f"{authd.base}/token")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 3600 and doc["scope"] == "containers read"
    r = authd.curl("-w", "\n%{http_code}", "-H", f"Authorization: Bearer {doc['access_token']}",
                   f"{authd.base}/containers/json")
    body, code = r.stdout.rsplit("\n", 1)
    assert code == "200" and isinstance(json.loads(body), list)
    # the same with HTTP Basic client authentication
    r = authd.curl("-u", "ci:ci-secret", "-d", "grant_type=client_credentials&scope=read", f"{authd.base}/token")
    assert json.loads(r.stdout)["scope"] == "read"


def test_ping_and_version_need_no_token(authd: AuthDaemon) -> None:
    for path in ("/_ping", "/v1.47/_ping", "/version", "/v1.44/version"):
        assert authd.http("GET", path)[0] == 200, path
    assert authd.http("HEAD", "/_ping")[0] == 200
    assert authd.http("GET", "/info")[0] == 401
    assert authd.http("GET", "/no/such/route")[0] == 401  # no route discovery without a token


def test_read_token_lists_but_cannot_create(authd: AuthDaemon) -> None:
    tok = authd.token("ro")
    before = authd.container_ids()
    status, _, doc = authd.bearer("GET", "/v1.47/containers/json?all=1", tok)
    assert status == 200 and isinstance(doc, list)
    assert authd.bearer("GET", "/images/json", tok)[0] == 200
    status, headers, doc = authd.bearer("POST", "/v1.47/containers/create", tok, CREATE)
    assert status == 403 and "needs scope containers" in doc["message"]
    assert 'error="insufficient_scope"' in headers["www-authenticate"]
    assert authd.container_ids() == before


def test_containers_token_and_the_policy(authd: AuthDaemon) -> None:
    tok = authd.token("ci")
    before = authd.container_ids()
    denied = [({"HostConfig": {"Privileged": True}}, "privileged"),
              ({"HostConfig": {"Binds": ["/:/host"]}}, "host-bind"),
              ({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}}, "host-mount"),
              ({"HostConfig": {"NetworkMode": "host"}}, "network-host"),
              ({"HostConfig": {"PidMode": "host"}}, "pid-host"),
              ({"HostConfig": {"CapAdd": ["SYS_ADMIN"]}}, "cap-add"),
              ({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x",
                                            "CgroupPermissions": "rwm"}]}}, "devices"),
              ({"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}}, "security-opt-unconfined")]
    for extra, rule in denied:
        status, _, doc = authd.bearer("POST", "/containers/create", tok, {**CREATE, **extra})
        assert status == 403 and f"policy rule {rule}:" in doc["message"], (rule, doc)
    assert authd.container_ids() == before
    # an allowed create works, and an exec in it cannot be privileged
    status, _, doc = authd.bearer("POST", "/containers/create?name=ci-ok", tok,
                                  {"Image": "busybox", "Cmd": ["sleep", "60"]})
    assert status == 201, doc
    cid = doc["Id"]
    try:
        assert authd.bearer("POST", f"/containers/{cid}/start", tok)[0] == 204
        status, _, doc = authd.bearer("POST", f"/containers/{cid}/exec", tok, {"Cmd": ["id"], "Privileged": True})
        assert status == 403 and "exec-privileged" in doc["message"]
        status, _, doc = authd.bearer("POST", f"/containers/{cid}/exec", tok, {"Cmd": ["id"]})
        assert status == 201
        # its scopes give no images, networks or volumes
        assert authd.bearer("POST", "/volumes/create", tok, {"Name": "civol"})[0] == 403
        assert authd.bearer("POST", "/networks/create", tok, {"Name": "cinet"})[0] == 403
        assert authd.bearer("DELETE", "/images/busybox", tok)[0] == 403
    finally:
        assert authd.bearer("DELETE", f"/containers/{cid}?force=1", tok)[0] == 204


def test_admin_token_may_do_what_the_policy_denies(authd: AuthDaemon) -> None:
    tok = authd.token("root")
    body = {"Image": "busybox", "Cmd": ["ls", "/host/etc/hostname"],
            "HostConfig": {"Privileged": True, "Binds": ["/:/host:ro"]}}
    status, _, doc = authd.bearer("POST", "/containers/create", tok, body)
    assert status == 201, doc
    cid = doc["Id"]
    try:
        assert authd.bearer("POST", f"/containers/{cid}/start", tok)[0] == 204
        status, _, doc = authd.bearer("POST", f"/containers/{cid}/wait", tok)
        assert status == 200 and doc["StatusCode"] == 0
        _, _, insp = authd.bearer("GET", f"/containers/{cid}/json", tok)
        assert insp["HostConfig"]["Privileged"] is True
    finally:
        assert authd.bearer("DELETE", f"/containers/{cid}?force=1", tok)[0] == 204


def _bad_tokens(authd: AuthDaemon) -> dict[str, tuple[str | None, str]]:
    """name -> (the Authorization header, a word the 401's description must hold)."""
    good = authd.token("ci")
    short = authd.token("short")
    revoked = authd.token("ci")
    jti = authd.bearer("GET", "/containers/json", revoked)  # used once: cached before its revocation
    assert jti[0] == 200
    import jwt

    r = authd.d.cli("auth", "revoke", jwt.decode(revoked, options={"verify_signature": False})["jti"])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: time.time() > jwt.decode(short, options={"verify_signature": False})["exp"] + 0.05, 5)
    return {
        "expired": (f"Bearer {short}", "expired"),
        "revoked": (f"Bearer {revoked}", "revoked"),
        "other key": (f"Bearer {resigned_with_other_key(good)}", "signature"),
        "alg none": (f"Bearer {unsigned_copy(good)}", "unsigned"),
        "wrong audience": (f"Bearer {authd.ext.token('bot', 'admin', 'another-audience')}", "audience"),
        "unknown issuer": (f"Bearer {ExternalIssuer('https://evil.example').token('x', 'admin', EXT_AUDIENCE)}",
                           "issuer"),
        "missing": (None, "no bearer token"),
        "malformed: no token": ("Bearer", "malformed"),
        "malformed: basic": (basic("ci", "ci-secret"), "malformed"),
        "malformed: two words": (f"Bearer {good} extra", "malformed"),
        "malformed: garbage": ("Bearer not.a.jwt", "malformed"),
        "malformed: truncated": (f"Bearer {good[:-10]}", "signature"),
    }


def test_bad_tokens_are_refused_and_change_nothing(authd: AuthDaemon) -> None:
    before = authd.container_ids()
    for name, (header, why) in _bad_tokens(authd).items():
        hdrs = {"Authorization": header} if header is not None else {}
        for method, path, body in (("GET", "/containers/json", None), ("POST", "/containers/create", CREATE)):
            status, headers, data = authd.http(method, path, body, hdrs)
            assert status == 401, (name, status, data)
            assert 'Bearer realm="dockyard", error="invalid_token"' in headers["www-authenticate"], name
            assert why in json.loads(data)["message"], (name, data)
    assert authd.container_ids() == before
    # an external issuer's good token is accepted, with its own scopes
    ext = authd.ext.token("build-bot", "read", EXT_AUDIENCE)
    assert authd.bearer("GET", "/containers/json", ext)[0] == 200
    assert authd.bearer("POST", "/containers/create", ext, CREATE)[0] == 403


def test_wrong_secret_gets_no_token(authd: AuthDaemon) -> None:
    status, doc = authd.token_response({"grant_type": "client_credentials", "client_id": "ci",
                                        "client_secret": "wrong"})
    assert status == 401 and doc["error"] == "invalid_client" and "access_token" not in doc
    status, doc = authd.token_response({"grant_type": "client_credentials"}, {"Authorization": basic("ci", "x")})
    assert status == 401 and doc["error"] == "invalid_client"
    status, doc = authd.token_response({"grant_type": "password", "username": "a", "password": "b"})
    assert status == 400 and doc["error"] == "unsupported_grant_type"
    status, doc = authd.token_response({"grant_type": "client_credentials", "client_id": "ro",
                                        "client_secret": "ro-secret", "scope": "read admin"})
    assert status == 400 and doc["error"] == "invalid_scope"


def test_revoke_a_client(authd: AuthDaemon) -> None:
    a, b = authd.token("ro"), authd.token("ci")
    assert authd.bearer("GET", "/containers/json", a)[0] == 200
    r = authd.d.cli("auth", "revoke", "ro")
    assert r.returncode == 0 and r.stdout.strip() == "ro", r.stderr
    assert authd.bearer("GET", "/containers/json", a)[0] == 401
    assert authd.bearer("GET", "/containers/json", b)[0] == 200
    time.sleep(1.05)  # tokens issued in the second of the revocation are revoked with it
    assert authd.bearer("GET", "/containers/json", authd.token("ro"))[0] == 200


def test_audit_records_the_client(authd: AuthDaemon) -> None:
    tok = authd.token("ci")
    since = int(time.time()) - 1
    status, _, doc = authd.bearer("POST", "/containers/create?name=audited", tok, CREATE)
    assert status == 201
    cid = doc["Id"]
    assert authd.bearer("DELETE", f"/containers/{cid}", tok)[0] == 204
    until = int(time.time()) + 1
    status, _, data = authd.d.api("GET", f"/events?since={since}&until={until}&filters="
                                  + quote(json.dumps({"container": [cid]})))
    events = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    actions = {e["Action"]: e["Actor"]["Attributes"] for e in events}
    assert actions["create"]["dockyard.client"] == "ci" and actions["destroy"]["dockyard.client"] == "ci"
    log = authd.d.log_tail(400)
    assert "client=ci" in log and "POST /containers/create" in log
    # a socket user's request (no token) is not attributed to anyone
    status, doc = authd.d.api_json("POST", "/containers/create?name=unaudited", CREATE)
    assert status == 201
    authd.d.api("DELETE", f"/containers/{doc['Id']}")
    status, _, data = authd.d.api("GET", f"/events?since={since}&until={int(time.time()) + 1}&filters="
                                  + quote(json.dumps({"container": [doc["Id"]]})))
    assert all("dockyard.client" not in json.loads(line)["Actor"]["Attributes"]
               for line in data.decode().splitlines() if line.strip())


def test_policy_show(authd: AuthDaemon) -> None:
    r = authd.d.cli("auth", "policy", "show")
    assert r.returncode == 0, r.stderr
    for rule in ("privileged", "cap-add", "host-bind", "network-host", "pid-host", "devices",
                 "security-opt-unconfined"):
        assert f"name: {rule}" in r.stdout, rule
    from dockyard.auth import policy

    shown = policy.parse(r.stdout, "shown")  # the output is a policy file again, the same rules
    assert [x.name for x in shown.rules] == [x.name for x in policy.load(None).rules]
    assert shown.describe() == policy.load(None).describe()
    r = authd.d.cli("auth", "policy", "show", "--format", "json")
    assert json.loads(r.stdout)["Rules"][0]["name"] == "privileged"
    # over TCP it needs a token; any valid one may read it, only admin may change auth state
    assert authd.http("GET", "/dockyard/auth/policy")[0] == 401
    assert authd.bearer("GET", "/dockyard/auth/policy", authd.token("ro"))[0] == 200
    assert authd.bearer("POST", "/dockyard/auth/revoke?target=root", authd.token("ci"))[0] == 403


def test_clients_cli_and_sighup(authd: AuthDaemon) -> None:
    cli = authd.d.cli  # over the unix socket: file permissions only
    r = cli("auth", "client", "add", "deployer", "--scope", "read,volumes", "--secret-stdin", "--cost", "4",
            input="dep-secret\n")
    assert r.returncode == 0 and r.stdout == "deployer\n", r.stderr
    with open(authd.clients_file) as f:
        on_disk = f.read()
    assert "deployer" in on_disk and "dep-secret" not in on_disk and "$2b$04$" in on_disk
    assert oct(os.stat(authd.clients_file).st_mode & 0o777) == "0o600"
    r = cli("auth", "client", "ls")
    assert r.returncode == 0
    assert [ln.split()[:2] for ln in r.stdout.splitlines()][1:] == [
        ["ci", "containers,read"], ["deployer", "read,volumes"], ["ro", "read"], ["root", "admin"],
        ["short", "containers,read"]]
    r = cli("auth", "client", "add", "deployer", "--scope", "read")
    assert r.returncode == 1 and "client deployer already exists" in r.stderr
    r = cli("auth", "client", "add", "x y", "--scope", "read")
    assert r.returncode == 1 and "invalid client id" in r.stderr
    r = cli("auth", "client", "add", "z", "--scope", "root")
    assert r.returncode == 1 and "unknown scope 'root'" in r.stderr
    assert cli("auth", "client", "add", "z").returncode == 1
    # the daemon serves the change at once
    form = {"grant_type": "client_credentials", "client_id": "deployer", "client_secret": "dep-secret"}
    status, doc = authd.token_response(form)
    assert status == 200 and doc["scope"] == "read volumes"
    assert authd.bearer("POST", "/volumes/create", doc["access_token"], {"Name": "depvol"})[0] == 201
    assert authd.bearer("DELETE", "/volumes/depvol", doc["access_token"])[0] == 204
    # managing clients over TCP needs admin
    assert authd.bearer("GET", "/dockyard/auth/clients", doc["access_token"])[0] == 200
    assert authd.bearer("POST", "/dockyard/auth/clients", doc["access_token"],
                        {"ID": "evil", "Scopes": ["admin"]})[0] == 403
    assert authd.bearer("DELETE", "/dockyard/auth/clients/root", doc["access_token"])[0] == 403
    # a generated secret is shown once
    r = cli("auth", "client", "add", "gen", "--scope", "read", "--cost", "4")
    assert r.returncode == 0 and "client secret (shown once): " in r.stdout
    secret = r.stdout.split("(shown once): ")[1].strip()
    assert authd.token_response({**form, "client_id": "gen", "client_secret": secret})[0] == 200
    r = cli("auth", "client", "rm", "gen", "nobody")
    assert r.returncode == 1 and r.stdout == "gen\n" and "no such client: nobody" in r.stderr
    assert authd.token_response({**form, "client_id": "gen", "client_secret": secret})[0] == 401
    # edits by hand take effect on SIGHUP
    write_clients(authd.clients_file, CLIENTS)  # type: ignore[arg-type]
    assert authd.token_response(form)[0] == 200
    assert authd.d.proc is not None
    os.kill(authd.d.proc.pid, signal.SIGHUP)
    wait_for(lambda: authd.token_response(form)[0] == 401, 10)
    # a broken file on SIGHUP keeps the last good one
    with open(authd.clients_file, "a") as f:
        f.write("  broken: {secret: plain}\n")
    os.kill(authd.d.proc.pid, signal.SIGHUP)
    wait_for(lambda: "clients file not reloaded" in authd.d.log_tail(50), 10)
    assert authd.token("ci")
    write_clients(authd.clients_file, CLIENTS)  # type: ignore[arg-type]
    os.kill(authd.d.proc.pid, signal.SIGHUP)


@pytest.mark.parametrize("seed", range(3))
def test_token_endpoint_fuzz(authd: AuthDaemon, seed: int) -> None:
    """Random bodies, content types and Authorization headers: only the real credentials get a token, every
    other answer is one of RFC 6749's errors, never a 5xx, and the daemon keeps serving."""
    import random

    rng = random.Random(seed)
    words = ["grant_type", "client_id", "client_secret", "scope", "client_credentials", "ci", "ci-secret", "read",
             "admin", "=", "&", "%", "%zz", "%00", "+", "\u00e9", "\xff", ";", "\r\n", "", "a" * 300]
    errors = {"invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope"}
    ctypes = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
              "application/json", "text/plain", ""]
    auths = [None, "", "Basic", "Basic !!", basic("ci", "ci-secret"), basic("ci", "no"), "Bearer x",
             "Basic " + "QQ==" * 50]
    for _ in range(60):
        body = "".join(rng.choice(words) for _ in range(rng.randint(0, 12))).encode("utf-8", "surrogatepass")
        if rng.random() < 0.2:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
        hdrs = {"Content-Type": rng.choice(ctypes)}
        auth = rng.choice(auths)
        if auth is not None:
            hdrs["Authorization"] = auth
        status, headers, data = authd.http("POST", "/token", body, hdrs)
        assert status in (200, 400, 401), (status, body, hdrs, data)
        doc = json.loads(data)
        if status == 200:
            assert doc["token_type"] == "Bearer" and authd.bearer("GET", "/_ping", doc["access_token"])[0] == 200
        else:
            assert doc["error"] in errors, doc
            assert "access_token" not in doc
    assert authd.http("GET", "/_ping")[0] == 200
    status, _, data = authd.http("POST", "/token", b"x" * (1 << 20),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and json.loads(data)["error"] == "invalid_request"
    assert authd.http("GET", "/token")[0] in (401, 405)


def test_build_under_the_policy(authd: AuthDaemon) -> None:
    """An `images` token (here an external issuer's) builds, but not with the host's network."""
    from helpers.tarballs import tar_bytes

    tok = authd.ext.token("builder", "images", EXT_AUDIENCE)
    context = tar_bytes(("Dockerfile", b"FROM busybox\nRUN true\n"))
    hdrs = {"Authorization": f"Bearer {tok}", "Content-Type": "application/x-tar"}
    status, _, data = authd.http("POST", "/build?t=auth-host-net:1&networkmode=host", context, hdrs)
    assert status == 403 and b"policy rule build-network-host" in data, data
    assert authd.d.api("GET", "/images/auth-host-net:1/json")[0] == 404
    status, _, data = authd.http("POST", "/build?t=auth-ok:1", context, hdrs)
    assert status == 200 and b"error" not in data.lower(), data
    assert authd.d.api("GET", "/images/auth-ok:1/json")[0] == 200
    assert authd.bearer("DELETE", "/images/auth-ok:1", tok)[0] == 200
    # the token's scope gives no containers
    assert authd.bearer("POST", "/containers/create", tok, CREATE)[0] == 403
