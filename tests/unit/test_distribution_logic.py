"""Pure logic of the registry client: manifests and platforms, auth challenges, endpoint rules, error
translation, progress text, push compression and the CLI's config.json handling."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os

import pytest

from dockyard.cli import dockerconfig
from dockyard.cli.format.jsonprogress import ProgressError, display
from dockyard.distribution import spec
from dockyard.distribution.auth import credentials_from_json, decode_registry_auth, parse_challenges
from dockyard.distribution.compress import gzip_blocks
from dockyard.distribution.progress import human_size, progress_text
from dockyard.distribution.pull import translate_pull_error
from dockyard.distribution.session import RegistryError, parse_errors
from dockyard.distribution.transport import RegistrySettings, Transport
from dockyard.errors import InvalidParameter
from dockyard.images.reference import parse_normalized


def _index(*plats: tuple[str, str, str]) -> spec.Index:
    body = {"schemaVersion": 2, "manifests": [
        {"mediaType": spec.OCI_MANIFEST, "digest": "sha256:" + f"{i:x}" * 64, "size": 1,
         "platform": {"os": o, "architecture": a, **({"variant": v} if v else {})}}
        for i, (o, a, v) in enumerate(plats, start=1)]}
    return spec.parse_index(json.dumps(body).encode(), spec.OCI_INDEX)


def test_platform_selection() -> None:
    idx = _index(("linux", "arm", "v6"), ("linux", "arm", "v7"), ("linux", "amd64", ""), ("unknown", "unknown", ""),
                 ("linux", "arm64", "v8"))
    assert spec.select_platform(idx, spec.parse_platform("linux/amd64")).digest == idx.manifests[2].digest
    assert spec.select_platform(idx, spec.parse_platform("linux/arm64")).digest == idx.manifests[4].digest
    assert spec.select_platform(idx, spec.parse_platform("linux/arm/v7")).digest == idx.manifests[1].digest
    assert spec.select_platform(idx, spec.parse_platform("linux/arm/v8")).digest == idx.manifests[1].digest
    assert spec.select_platform(idx, spec.parse_platform("linux/s390x")) is None
    assert spec.parse_platform("x86_64") == spec.Platform("linux", "amd64", "")
    with pytest.raises(InvalidParameter, match="invalid platform format"):
        spec.parse_platform("linux//")


def test_manifest_kinds_and_schema1() -> None:
    assert spec.manifest_kind(b'{"schemaVersion":1,"fsLayers":[]}') == spec.DOCKER_MANIFEST_V1_SIGNED
    assert spec.manifest_kind(b'{"schemaVersion":2,"manifests":[]}') == spec.OCI_INDEX
    assert spec.manifest_kind(b'{"schemaVersion":2,"config":{}}', spec.DOCKER_MANIFEST) == spec.DOCKER_MANIFEST
    with pytest.raises(spec.ManifestError):
        spec.parse_manifest(b'{"schemaVersion":2,"config":{"digest":"sha256:x","size":1},"layers":[]}',
                            spec.OCI_MANIFEST)
    assert "schema 1 support has been removed" in spec.SCHEMA1_REFUSED.format(ref="docker.io/a/b:latest")


def test_challenges_and_registry_auth() -> None:
    chs = parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                           'scope="repository:a/b:pull,push",error="insufficient_scope"')
    assert chs[0].scheme == "bearer"
    assert chs[0].params == {"realm": "https://auth.example/token", "service": "registry.example",
                             "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}
    assert parse_challenges('Basic realm="basic-realm"')[0].scheme == "basic"
    hdr = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p"}).encode()).decode().rstrip("=")
    c = decode_registry_auth(hdr)
    assert (c.username, c.password) == ("u", "p")
    assert decode_registry_auth("not base64 json!").empty
    assert credentials_from_json({"auth": base64.b64encode(b"x:y").decode()}).password == "y"


def test_error_translation_uses_docker_wording() -> None:
    ref = parse_normalized("127.0.0.1:5000/team/app:v1")
    err = parse_errors(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                       'Bearer realm="x",service="y",error="insufficient_scope"')
    assert err.code == "DENIED"
    assert str(translate_pull_error(err, ref)) == (
        "pull access denied for 127.0.0.1:5000/team/app, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied")
    unknown = parse_errors(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    assert str(translate_pull_error(unknown, ref)) == (
        "manifest for 127.0.0.1:5000/team/app:v1 not found: manifest unknown: manifest unknown")
    other = RegistryError("TOOMANYREQUESTS", "slow down", 429)
    assert translate_pull_error(other, ref) is other


def test_endpoints_follow_docker_rules() -> None:
    t = Transport(RegistrySettings(insecure_registries=["10.1.0.0/16", "plain.example:5000"],
                                   mirrors=["https://192.0.2.20"], certs_dirs=[]))
    assert [e.base for e in t.endpoints("docker.io")] == ["https://192.0.2.20", "https://registry-1.docker.io"]
    assert t.endpoints("docker.io")[0].mirror
    assert [e.base for e in t.endpoints("192.0.2.10:5000")] == ["https://192.0.2.10:5000"]  # literals: no DNS
    assert [e.base for e in t.endpoints("plain.example:5000")] == ["https://plain.example:5000",
                                                                  "http://plain.example:5000"]
    assert t.is_insecure("10.1.2.3:5000") and t.is_insecure("127.0.0.1:5000")
    assert not t.is_insecure("10.2.0.1:5000")
    with pytest.raises(InvalidParameter):
        RegistrySettings(mirrors=["mirror.example"]).validate()


def test_progress_text_matches_dockerd() -> None:
    assert human_size(1093499) == "1.093MB"
    assert progress_text(50, 100) == "[" + "=" * 25 + ">" + " " * 25 + "]      50B/100B"
    assert progress_text(100, 100).startswith("[" + "=" * 50 + ">]")


def test_push_compression_is_parallel_gzip_and_deterministic() -> None:
    data = os.urandom(5 << 20) + b"x" * (6 << 20)
    first = b"".join(gzip_blocks(io.BytesIO(data)))
    again = b"".join(gzip_blocks(io.BytesIO(data)))
    assert first == again
    assert gzip.decompress(first) == data
    assert gzip.decompress(b"".join(gzip_blocks(io.BytesIO(b"")))) == b""
    text = b"".join(f"line {i} of a compressible layer\n".encode() for i in range(200_000))
    assert len(b"".join(gzip_blocks(io.BytesIO(text)))) < len(text) / 3  # deflated
    assert len(first) < len(data) * 1.01  # random blocks stored, text blocks deflated


def test_terminal_display_and_plain_lines() -> None:
    msgs = [{"status": "Pulling from a/b", "id": "v1"},
            {"status": "Pulling fs layer", "progressDetail": {}, "id": "l1"},
            {"status": "Pulling fs layer", "progressDetail": {}, "id": "l2"},
            {"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "progress": "[=>]", "id": "l1"},
            {"status": "Pull complete", "progressDetail": {}, "id": "l1"},
            {"progressDetail": {}, "aux": {"Digest": "x"}},
            {"status": "Digest: sha256:abc"}]
    out = io.StringIO()
    display(msgs, out, tty=False)
    assert out.getvalue().splitlines() == ["v1: Pulling from a/b", "l1: Pulling fs layer", "l2: Pulling fs layer",
                                           "l1: Pull complete", "Digest: sha256:abc"]
    out = io.StringIO()
    display(msgs, out, tty=True)
    assert "\x1b[2A\r\x1b[2Kl1: Downloading [=>]\r\x1b[2B" in out.getvalue()
    with pytest.raises(ProgressError, match="boom"):
        display([{"error": "boom", "errorDetail": {"message": "boom"}}], io.StringIO(), tty=False)


def test_config_json_as_the_docker_cli_writes_it(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with open(os.path.join(str(tmp_path), "config.json"), "w") as f:
        json.dump({"psFormat": "table {{.ID}}"}, f)
    assert dockerconfig.server_key("docker.io") == "https://index.docker.io/v1/"
    assert dockerconfig.server_key("https://127.0.0.1:5000/") == "127.0.0.1:5000"
    dockerconfig.store_auth("127.0.0.1:5000", "u", "p")
    cfg = dockerconfig.load()
    assert cfg["psFormat"] == "table {{.ID}}"
    assert cfg["auths"]["127.0.0.1:5000"] == {"auth": base64.b64encode(b"u:p").decode()}
    assert dockerconfig.get_auth("127.0.0.1:5000")["password"] == "p"
    dockerconfig.store_auth("reg.example", "u", "", identity_token="refresh")
    assert dockerconfig.load()["auths"]["reg.example"]["identitytoken"] == "refresh"
    assert dockerconfig.erase_auth("127.0.0.1:5000")
    assert not dockerconfig.erase_auth("127.0.0.1:5000")
    assert "127.0.0.1:5000" not in dockerconfig.load()["auths"]
