"""The loopback registry fixture itself: each mode serves the v2 API and enforces its auth."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers.registry import REGISTRY_BIN, running_registry

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")


@pytest.fixture(scope="module")
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyreg", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", ["http", "tls", "basic", "token"])
def test_mode_serves_and_guards(tmp: str, mode: str) -> None:
    with running_registry(tmp, mode) as reg:
        status, hdrs, _ = reg.request("GET", "/v2/")
        if mode in ("basic", "token"):
            assert status == 401
            challenge = hdrs["www-authenticate"]
            assert challenge.lower().startswith("basic" if mode == "basic" else "bearer")
        else:
            assert status == 200
        blob = b"layer bytes " + mode.encode()
        digest = reg.put_blob("team/app", blob)
        cfg = json.dumps({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                          "size": len(blob)})
        manifest = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":'
                    + cfg + ',"layers":[]}').encode()
        reg.put_manifest("team/app", "v1", manifest, "application/vnd.oci.image.manifest.v1+json")
        status, _, body = reg.get_manifest("team/app", "v1", "application/vnd.oci.image.manifest.v1+json")
        assert status == 200 and body == manifest
        if mode == "tls":
            assert os.path.exists(os.path.join(reg.certs_dir, reg.host, "ca.crt"))
    assert not os.path.exists(reg.dir)


def test_token_server_rejects_wrong_password(tmp: str) -> None:
    import base64
    import urllib.error
    import urllib.request

    with running_registry(tmp, "token", users={"alice": "right"}) as reg:
        assert reg.tokens is not None
        req = urllib.request.Request(reg.tokens.realm + "?service=test-registry&scope=repository:a:pull",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code == 401
