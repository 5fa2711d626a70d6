"""Read-only mode, the rate limit, search, upload purging, the config file, auth failures and concurrent pushes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from regserver import (
    Answer,
    RegistryProcess,
    basic,
    blobs_consistent,
    free_port,
    make_token_key,
    sha,
    write_htpasswd,
)

Factory = Callable[..., RegistryProcess]


def test_read_only(registry_factory: Factory) -> None:
    root_reg = registry_factory()
    digest = root_reg.push_image("ro/img", "v1")
    root_reg.stop()
    reg = registry_factory("--read-only", "--delete-enabled", root=root_reg.root)
    a = reg.request("POST", "/v2/ro/img/blobs/uploads/")
    assert a.status == 405 and a.code() == "UNSUPPORTED"
    a = reg.request("DELETE", f"/v2/ro/img/manifests/{digest}")
    assert a.status == 405 and a.code() == "UNSUPPORTED"
    assert reg.request("GET", "/v2/ro/img/manifests/v1").status == 200


def test_rate_limit_on_by_default_and_configurable(registry_factory: Factory) -> None:
    reg = registry_factory()
    # the default limit (500/s, bursts of 1000) lets a burst of ordinary requests through
    assert all(reg.request("GET", "/v2/").status == 200 for _ in range(50))
    reg = registry_factory("--rate-limit", "2")  # bursts of 4
    statuses = [reg.request("GET", "/v2/") for _ in range(20)]
    limited = [a for a in statuses if a.status == 429]
    assert limited, [a.status for a in statuses]
    assert limited[0].code() == "TOOMANYREQUESTS" and int(limited[0].headers["retry-after"]) >= 1
    time.sleep(1.5)
    assert reg.request("GET", "/v2/").status == 200


def test_rate_limit_is_exact_across_workers(registry_factory: Factory, work_dir: str) -> None:
    # two worker processes of 16 threads share one budget: of 120 concurrent requests from one address, each on
    # its own connection (so both workers serve some), exactly the burst gets through (less the one GET /v2/
    # the fixture's readiness probe spent: the socket listens before the workers run, so its first try is answered)
    cfg = os.path.join(work_dir, "config.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nhttp:\n  ratelimit:\n    rate: 0.001\n    burst: 40\n")
    reg = registry_factory("--config", cfg, "--workers", "2", "--threads", "16")
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda _: reg.request("GET", "/v2/").status, range(120)))
    assert statuses.count(200) == 39 and statuses.count(429) == 81, statuses


def test_search(registry_factory: Factory) -> None:
    reg = registry_factory()
    for repo in ("library/busybox", "team/busybox-tools", "library/debian"):
        reg.push_image(repo, "v1")
    doc = reg.request("GET", "/v1/search?q=busybox&n=25").json()
    assert [r["name"] for r in doc["results"]] == ["library/busybox", "team/busybox-tools"]
    assert doc["num_results"] == 2 and doc["query"] == "busybox"
    assert set(doc["results"][0]) == {"name", "description", "star_count", "is_official", "is_automated"}
    assert len(reg.request("GET", "/v1/search?q=&n=1").json()["results"]) == 1


def test_unfinished_uploads_are_purged(registry_factory: Factory) -> None:
    reg = registry_factory("--upload-timeout", "2s")
    a = reg.request("POST", "/v2/p/q/blobs/uploads/")
    loc = a.headers["location"]
    assert reg.request("PATCH", loc, b"partial").status == 202
    upload_id = loc.rsplit("/", 1)[1]
    assert os.path.isdir(os.path.join(reg.root, "uploads", upload_id))
    deadline = time.monotonic() + 15
    while os.path.isdir(os.path.join(reg.root, "uploads", upload_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not os.path.isdir(os.path.join(reg.root, "uploads", upload_id))
    a = reg.request("GET", loc)
    assert a.status == 404 and a.code() == "BLOB_UPLOAD_UNKNOWN"


def test_config_file(registry_factory: Factory, work_dir: str) -> None:
    root = os.path.join(work_dir, "fromconfig")
    port = free_port()
    cfg = os.path.join(work_dir, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging: {{enabled: true, age: 168h, interval: 24h}}
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
""")
    reg = registry_factory("--config", cfg, root=os.path.join(work_dir, "unused"), start=False)
    reg.start(addr=None)
    assert reg.port == port
    a = reg.request("GET", "/v2/")
    assert a.headers["x-content-type-options"] == "nosniff"
    digest = reg.push_image("cfg/img", "v1")
    assert os.path.isdir(os.path.join(root, "repositories", "cfg", "img"))
    assert reg.request("DELETE", f"/v2/cfg/img/manifests/{digest}").status == 202  # storage.delete.enabled
    reg.stop()
    with open(cfg, "a") as f:
        f.write("  tls: {certificate: /nonexistent.crt}\n")
    import subprocess

    from regserver import DOCKYARD

    p = subprocess.run([DOCKYARD, "registry", "serve", "--config", cfg], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "--tls-cert and --tls-key go together" in p.stderr


def test_wrong_password_and_missing_credentials(registry_factory: Factory, work_dir: str) -> None:
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret"})
    reg = registry_factory("--htpasswd", htp)
    a = reg.request("GET", "/v2/")
    assert a.status == 401 and a.code() == "UNAUTHORIZED"
    assert a.headers["www-authenticate"] == 'Basic realm="Registry Realm"'
    a = reg.request("POST", f"/v2/x/y/blobs/uploads/?digest={sha(b'data')}", b"data",
                    {"Authorization": basic("alice", "wrong")})
    assert a.status == 401 and a.code() == "UNAUTHORIZED"
    assert reg.request("GET", "/v2/", headers={"Authorization": basic("mallory", "s3cret")}).status == 401
    assert not os.path.exists(os.path.join(reg.root, "repositories", "x"))
    assert os.listdir(os.path.join(reg.root, "blobs", "sha256")) == []
    reg.auth = basic("alice", "s3cret")
    assert reg.request("GET", "/v2/").status == 200
    reg.push_image("x/y", "v1")


def test_bearer_tokens(registry_factory: Factory, work_dir: str) -> None:
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret"})
    key = make_token_key(os.path.join(work_dir, "k.pem"), "rsa")
    port = free_port()
    realm = f"http://127.0.0.1:{port}/token"
    reg = registry_factory("--htpasswd", htp, "--token-realm", realm, "--token-service", "svc", "--token-issuer", "iss",
                           "--token-key", key, start=False)
    reg.start(addr=f"127.0.0.1:{port}")
    a = reg.request("GET", "/v2/a/b/manifests/v1")
    assert a.status == 401 and a.code() == "UNAUTHORIZED"
    assert a.headers["www-authenticate"] == f'Bearer realm="{realm}",service="svc",scope="repository:a/b:pull"'

    def token(scope: str, auth: str | None = basic("alice", "s3cret")) -> Answer:
        return reg.request("GET", f"/token?service=svc&scope={scope}", headers={"Authorization": auth} if auth else {})

    t = token("repository:a/b:pull,push")
    assert t.status == 200
    doc = t.json()
    assert doc["token"] == doc["access_token"] and doc["expires_in"] == 300
    bearer = {"Authorization": "Bearer " + doc["token"]}
    a = reg.request("POST", f"/v2/a/b/blobs/uploads/?digest={sha(b'x')}", b"x", bearer)
    assert a.status == 201
    # a token for a/b is no good for c/d
    a = reg.request("GET", "/v2/c/d/tags/list", headers=bearer)
    assert a.status == 401 and 'error="insufficient_scope"' in a.headers["www-authenticate"]
    # anonymous: a token without any action
    anon = token("repository:a/b:pull", auth=None).json()["token"]
    a = reg.request("GET", f"/v2/a/b/blobs/{sha(b'x')}", headers={"Authorization": "Bearer " + anon})
    assert a.status == 401
    assert token("repository:a/b:pull", basic("alice", "nope")).status == 401
    # a forged token: signed by another key
    from dockyard.distribution.server.auth import TokenSigner

    other = TokenSigner(make_token_key(os.path.join(work_dir, "other.pem")))
    forged = other.sign({"iss": "iss", "aud": "svc", "sub": "alice", "exp": time.time() + 60,
                         "access": [{"type": "repository", "name": "a/b", "actions": ["pull"]}]})
    a = reg.request("GET", f"/v2/a/b/blobs/{sha(b'x')}", headers={"Authorization": "Bearer " + forged})
    assert a.status == 401 and 'error="invalid_token"' in a.headers["www-authenticate"]
    assert reg.request("GET", f"/v2/a/b/blobs/{sha(b'x')}", headers=bearer).body == b"x"
    # the OAuth2 password grant (POST)
    form = "grant_type=password&username=alice&password=s3cret&service=svc&scope=repository:a/b:pull&client_id=t"
    a = reg.request("POST", "/token", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert a.status == 200 and a.json()["scope"] == "repository:a/b:pull"
    pulled = reg.request("GET", f"/v2/a/b/blobs/{sha(b'x')}",
                         headers={"Authorization": "Bearer " + a.json()["access_token"]})
    assert pulled.body == b"x"
    a = reg.request("POST", "/token", form.replace("s3cret", "nope").encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert a.status == 401
    a = reg.request("POST", "/token", b"grant_type=refresh_token&refresh_token=x",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert a.status == 400 and a.json()["error"] == "unsupported_grant_type"


def test_concurrent_push_of_the_same_blob(registry: RegistryProcess) -> None:
    data = os.urandom(4 << 20)
    digest = sha(data)
    results: list[int] = []

    def monolithic() -> None:
        results.append(registry.request("POST", f"/v2/c/blob/blobs/uploads/?digest={digest}", data).status)

    def chunked() -> None:
        loc = registry.request("POST", "/v2/c/blob/blobs/uploads/").headers["location"]
        loc = registry.request("PATCH", loc, data[: 1 << 20]).headers["location"]
        results.append(registry.request("PUT", f"{loc}?digest={digest}", data[1 << 20:]).status)

    threads = [threading.Thread(target=monolithic if i % 2 else chunked) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 8
    assert registry.request("GET", f"/v2/c/blob/blobs/{digest}").body == data
    assert blobs_consistent(registry.root) == []
    assert os.listdir(os.path.join(registry.root, "uploads")) == []
    assert [n for n in os.listdir(os.path.join(registry.root, "blobs", "sha256")) if n.startswith(".")] == []


def test_cli_usage_and_bad_flags(work_dir: str) -> None:
    import subprocess

    from regserver import DOCKYARD

    p = subprocess.run([DOCKYARD, "registry"], capture_output=True, text=True)
    assert p.returncode == 1 and "serve" in p.stdout and "gc" in p.stdout
    p = subprocess.run([DOCKYARD, "registry", "serve", "--addr", "nonsense", "--root", work_dir],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "invalid address" in p.stderr
    p = subprocess.run([DOCKYARD, "registry", "serve", "--root", work_dir, "--token-realm", "http://x/t"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Bearer auth needs" in p.stderr


def test_access_rules_with_basic_auth(registry_factory: Factory, work_dir: str) -> None:
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret", "bob": "pw"})
    cfg = os.path.join(work_dir, "acl.yml")
    with open(cfg, "w") as f:
        f.write(f"""auth:
  htpasswd: {{path: {htp}}}
  access:
    - {{account: alice, name: "*", actions: ["*"]}}
    - {{account: bob, name: "shared/*", actions: [pull]}}
""")
    reg = registry_factory("--config", cfg)
    reg.auth = basic("alice", "s3cret")
    reg.push_image("shared/app", "v1")
    bob = {"Authorization": basic("bob", "pw")}
    assert reg.request("GET", "/v2/shared/app/manifests/v1", headers=bob).status == 200
    a = reg.request("POST", "/v2/shared/app/blobs/uploads/", headers=bob)
    assert a.status == 403 and a.code() == "DENIED"
    a = reg.request("GET", "/v2/private/app/tags/list", headers=bob)
    assert a.status == 403 and a.code() == "DENIED"


def test_tls_from_config(registry_factory: Factory, work_dir: str) -> None:
    import ssl

    from regserver import make_tls

    tls = make_tls(os.path.join(work_dir, "tls"))
    cfg = os.path.join(work_dir, "tls.yml")
    with open(cfg, "w") as f:
        f.write(f"http:\n  tls:\n    certificate: {tls.cert}\n    key: {tls.key}\n    clientcas: [{tls.ca}]\n")
    reg = registry_factory("--config", cfg, start=False)
    reg.scheme = "https"
    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.load_cert_chain(tls.client_cert, tls.client_key)
    reg.ssl_context = ctx
    reg.start()
    assert reg.scheme == "https" and reg.request("GET", "/v2/").status == 200
    reg.ssl_context = ssl.create_default_context(cafile=tls.ca)  # no client certificate: refused
    try:
        status = reg.request("GET", "/v2/").status
    except (ssl.SSLError, ConnectionError):
        status = 0
    assert status == 0
