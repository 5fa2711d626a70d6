"""Pull-through cache: `--proxy` / proxy.remoteurl in front of a second local registry (Debian's distribution
with Bearer tokens, and one of ours), serving and keeping what it fetched, also once the remote is gone."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

import pytest
from regserver import RegistryProcess, image_manifest, sha, skopeo

from helpers.registry import REGISTRY_BIN, running_registry

Factory = Callable[..., RegistryProcess]
OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="Debian's docker-registry not installed")
def test_pull_through_distribution_with_token_auth(registry_factory: Factory, work_dir: str) -> None:
    with running_registry(work_dir, "token", users={"puller": "pw"}) as remote:
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = os.urandom(300_000)
        cd, ld = remote.put_blob("library/app", config), remote.put_blob("library/app", layer)
        manifest = json.dumps(image_manifest(cd, len(config), ld, len(layer))).encode()
        md = remote.put_manifest("library/app", "1.0", manifest, OCI)
        cfg = os.path.join(work_dir, "proxy.yml")
        with open(cfg, "w") as f:
            f.write(f"proxy:\n  remoteurl: {remote.url}\n  username: puller\n  password: pw\n")
        proxy = registry_factory("--config", cfg)
        a = proxy.request("GET", "/v2/library/app/manifests/1.0")
        assert a.status == 200 and a.body == manifest and a.headers["docker-content-digest"] == md
        assert proxy.request("GET", f"/v2/library/app/blobs/{ld}").body == layer
        assert proxy.request("HEAD", f"/v2/library/app/blobs/{cd}").status == 200
        assert proxy.request("GET", f"/v2/library/app/blobs/{sha(b'nothing')}").status == 404
        assert proxy.request("GET", "/v2/library/app/manifests/nope").status == 404
        a = proxy.request("POST", "/v2/library/app/blobs/uploads/")
        assert a.status == 405 and a.code() == "UNSUPPORTED"
        names = set(os.listdir(os.path.join(proxy.root, "blobs", "sha256")))
        assert {md[7:], cd[7:], ld[7:]} <= names
    # the remote is gone: what was fetched is still served, by tag and by digest
    assert proxy.request("GET", "/v2/library/app/manifests/1.0").body == manifest
    assert proxy.request("GET", f"/v2/library/app/manifests/{md}").status == 200
    assert proxy.request("GET", f"/v2/library/app/blobs/{ld}").body == layer


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_through_a_proxy_of_ours(registry_factory: Factory, work_dir: str) -> None:
    upstream = registry_factory()
    upstream.push_image("team/tool", "v2", layer=os.urandom(50_000))
    proxy = registry_factory("--proxy", upstream.url)
    r = skopeo("copy", "--src-tls-verify=false", f"docker://{proxy.addr}/team/tool:v2", f"oci:{work_dir}/oci:t")
    assert r.returncode == 0, r.stderr
    assert proxy.request("GET", "/v2/_catalog").json() == {"repositories": ["team/tool"]}
    upstream.stop()
    r = skopeo("inspect", "--tls-verify=false", f"docker://{proxy.addr}/team/tool:v2")
    assert r.returncode == 0, r.stderr
