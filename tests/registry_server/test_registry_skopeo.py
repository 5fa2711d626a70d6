"""skopeo (a third-party client) copies images into and out of our registry: docker-archive and OCI layout
sources made by `dockyard save` from a bootstrapped busybox, plain, with TLS, with htpasswd, with mutual TLS
and with Bearer tokens from the built-in token endpoint. What comes back out loads into the engine and runs."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest
from regserver import RegistryProcess, free_port, make_tls, make_token_key, skopeo, write_htpasswd

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


@pytest.fixture(scope="module")
def busybox_archive(daemon: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("bb") / "busybox.tar")
    daemon.cli("save", "-o", out, busybox_image, check=True)
    return out


def _layers(reg: RegistryProcess, repo: str, tag: str) -> list[str]:
    a = reg.request("GET", f"/v2/{repo}/manifests/{tag}")
    assert a.status == 200, a
    return [layer["digest"] for layer in a.json()["layers"]]


def test_skopeo_round_trip_and_run(daemon: Any, busybox_archive: str, registry: RegistryProcess, work_dir: str) -> None:
    dest = f"docker://{registry.addr}"
    r = skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{busybox_archive}", f"{dest}/library/busybox:1")
    assert r.returncode == 0, r.stderr
    oci = os.path.join(work_dir, "oci")
    r = skopeo("copy", "--src-tls-verify=false", f"{dest}/library/busybox:1", f"oci:{oci}:bb")
    assert r.returncode == 0, r.stderr
    # an OCI layout as the source, into another repository (its blobs are pushed or mounted)
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{oci}:bb", f"{dest}/copies/busybox:2")
    assert r.returncode == 0, r.stderr
    # the OCI layout holds an OCI manifest (skopeo converts), over the very same layer blobs
    assert _layers(registry, "copies/busybox", "2") == _layers(registry, "library/busybox", "1")
    r = skopeo("inspect", "--tls-verify=false", f"{dest}/copies/busybox:2")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["Os"] == "linux" and info["RepoTags"] == ["2"] and len(info["Layers"]) >= 1
    out = os.path.join(work_dir, "out.tar")
    r = skopeo("copy", "--src-tls-verify=false", f"{dest}/copies/busybox:2", f"docker-archive:{out}:busybox:fromreg")
    assert r.returncode == 0, r.stderr
    daemon.cli("load", "-i", out, check=True)
    run = daemon.cli("run", "--rm", "busybox:fromreg", "echo", "pulled through the registry", timeout=120)
    assert run.returncode == 0 and run.stdout == "pulled through the registry\n", run.stderr
    daemon.cli("rmi", "busybox:fromreg")
    # every stored blob is what its name says
    bdir = os.path.join(registry.root, "blobs", "sha256")
    import hashlib

    for name in os.listdir(bdir):
        with open(os.path.join(bdir, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name


def test_skopeo_tls_and_htpasswd(busybox_archive: str, registry_factory: Callable[..., RegistryProcess],
                                 work_dir: str) -> None:
    tls = make_tls(os.path.join(work_dir, "tls"))
    certs = os.path.join(work_dir, "certs.d")
    os.makedirs(certs)
    shutil.copy(tls.ca, os.path.join(certs, "ca.crt"))
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret", "bob": "hunter2"})
    reg = registry_factory("--tls-cert", tls.cert, "--tls-key", tls.key, "--htpasswd", htp)
    dest = f"docker://{reg.addr}/team/busybox:tls"
    r = skopeo("copy", "--dest-cert-dir", certs, "--dest-creds", "alice:s3cret", f"docker-archive:{busybox_archive}", dest)
    assert r.returncode == 0, r.stderr
    r = skopeo("copy", "--dest-cert-dir", certs, "--dest-creds", "alice:wrong", f"docker-archive:{busybox_archive}",
               f"docker://{reg.addr}/team/other:tls")
    assert r.returncode != 0 and "unauthorized" in r.stderr.lower(), r.stderr
    assert not os.path.exists(os.path.join(reg.root, "repositories", "team", "other"))
    r = skopeo("copy", "--src-cert-dir", certs, "--src-creds", "bob:hunter2", dest, f"oci:{work_dir}/oci:x")
    assert r.returncode == 0, r.stderr
    # without the CA the server's certificate is not trusted
    r = skopeo("inspect", "--creds", "bob:hunter2", dest)
    assert r.returncode != 0 and "certificate" in r.stderr.lower(), r.stderr
    r = skopeo("inspect", "--cert-dir", certs, dest)  # no credentials
    assert r.returncode != 0 and ("unauthorized" in r.stderr.lower() or "authentication" in r.stderr.lower())


def test_skopeo_mutual_tls(busybox_archive: str, registry_factory: Callable[..., RegistryProcess],
                           work_dir: str) -> None:
    tls = make_tls(os.path.join(work_dir, "tls"))
    with_client = os.path.join(work_dir, "with-client")
    without = os.path.join(work_dir, "without")
    os.makedirs(with_client)
    os.makedirs(without)
    for d in (with_client, without):
        shutil.copy(tls.ca, os.path.join(d, "ca.crt"))
    shutil.copy(tls.client_cert, os.path.join(with_client, "client.cert"))
    shutil.copy(tls.client_key, os.path.join(with_client, "client.key"))
    reg = RegistryProcess(os.path.join(work_dir, "root"),
                          ["--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-client-ca", tls.ca])
    reg.scheme = "https"
    import ssl

    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.load_cert_chain(tls.client_cert, tls.client_key)
    reg.ssl_context = ctx
    try:
        reg.start()
        r = skopeo("copy", "--dest-cert-dir", with_client, f"docker-archive:{busybox_archive}",
                   f"docker://{reg.addr}/m/tls:1")
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--cert-dir", without, f"docker://{reg.addr}/m/tls:1")
        assert r.returncode != 0, r.stdout
    finally:
        reg.kill()


def test_skopeo_bearer_token(busybox_archive: str, registry_factory: Callable[..., RegistryProcess],
                             work_dir: str) -> None:
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret"})
    key = make_token_key(os.path.join(work_dir, "token.key"))
    port = free_port()
    cfg = os.path.join(work_dir, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"""version: 0.1
auth:
  htpasswd: {{path: {htp}}}
  token:
    realm: http://127.0.0.1:{port}/auth/token
    service: dockyard-test
    issuer: dockyard-test-issuer
    key: {key}
    access:
      - {{account: alice, name: "alice/*", actions: [pull, push]}}
      - {{account: "*", name: "shared/*", actions: [pull]}}
""")
    reg = registry_factory("--config", cfg, start=False)
    reg.start(addr=f"127.0.0.1:{port}")
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", f"docker-archive:{busybox_archive}",
               f"docker://{reg.addr}/alice/busybox:tok")
    assert r.returncode == 0, r.stderr
    r = skopeo("inspect", "--tls-verify=false", "--creds", "alice:s3cret", f"docker://{reg.addr}/alice/busybox:tok")
    assert r.returncode == 0, r.stderr
    # alice may not push outside her namespace
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", f"docker-archive:{busybox_archive}",
               f"docker://{reg.addr}/bob/busybox:tok")
    assert r.returncode != 0
    assert not os.path.exists(os.path.join(reg.root, "repositories", "bob"))
    r = skopeo("inspect", "--tls-verify=false", "--creds", "alice:wrong", f"docker://{reg.addr}/alice/busybox:tok")
    assert r.returncode != 0
