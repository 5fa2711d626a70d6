"""Pull from a real distribution registry on loopback, through the API, the docker CLI, docker-py and the
dockyard CLI: progress, RepoDigests, pull by digest, platforms, auth modes, TLS via certs.d, docker's errors,
and a corrupted blob that must leave nothing behind."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon
from helpers.registry import Registry, busybox_layer, files_layer, running_registry, seed_image, seed_index

from .conftest import trust


def _auth(user: str, pw: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"username": user, "password": pw}).encode()).decode()


def _lines(body: bytes) -> list[dict[str, object]]:
    return [json.loads(x) for x in body.splitlines() if x.strip()]


def _rmi(daemon: TestDaemon, *names: str) -> None:
    for n in names:
        daemon.api("DELETE", f"/images/{n}?force=1")


def _layer_dirs(daemon: TestDaemon) -> set[str]:
    d = os.path.join(daemon.data_root, "layers")
    return {n for n in os.listdir(d) if n not in ("l", "empty")}


@pytest.fixture(scope="module")
def plain(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "http") as reg:
        yield reg


@pytest.fixture(scope="module")
def app(plain: Registry) -> dict[str, object]:
    return seed_image(plain, "team/app", "v1", [busybox_layer(), files_layer({"hello.txt": b"hi from registry\n"})],
                      cmd=["cat", "/hello.txt"])


def test_api_pull_streams_docker_progress_and_records_repo_digest(daemon: TestDaemon, plain: Registry,
                                                                  app: dict[str, object]) -> None:
    name = f"{plain.host}/team/app"
    status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1", timeout=120)
    assert status == 200, body
    msgs = _lines(body)
    statuses = [m.get("status") for m in msgs]
    assert msgs[0] == {"status": "Pulling from team/app", "id": "v1"}
    layer_ids = [str(d).split(":")[1][:12] for d in app["layers"]]  # type: ignore[attr-defined]
    for lid in layer_ids:
        seq = [m["status"] for m in msgs if m.get("id") == lid]
        assert seq[0] == "Pulling fs layer"
        assert "Downloading" in seq
        assert seq[-4:] == ["Verifying Checksum", "Download complete", "Extracting", "Pull complete"], seq
    dl = next(m for m in msgs if m.get("status") == "Downloading")
    assert set(dl["progressDetail"]) == {"current", "total"}  # type: ignore[arg-type]
    assert str(dl["progress"]).startswith("[")
    assert f"Digest: {app['manifest']}" in statuses
    assert statuses[-1] == f"Status: Downloaded newer image for {name}:v1"
    st, info = daemon.api_json("GET", f"/images/{name}:v1/json")
    assert st == 200
    assert info["Id"] == app["config"]  # the image ID is the config digest: content round-trips unchanged
    assert info["RepoDigests"] == [f"{name}@{app['manifest']}"]
    assert info["RootFS"]["Layers"] == app["diff_ids"]
    run = daemon.docker("run", "--rm", f"{name}:v1")
    assert run.returncode == 0 and run.stdout == "hi from registry\n", run.stderr
    # again: nothing to download
    status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1")
    msgs = _lines(body)
    assert [m["status"] for m in msgs if m.get("id") in layer_ids] == ["Already exists"] * 2
    assert msgs[-1]["status"] == f"Status: Image is up to date for {name}:v1"


def test_docker_cli_pull_by_tag_and_digest(daemon: TestDaemon, plain: Registry, app: dict[str, object]) -> None:
    name = f"{plain.host}/team/app"
    _rmi(daemon, f"{name}:v1", f"{name}@{app['manifest']}")
    r = daemon.docker("pull", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    assert "v1: Pulling from team/app" in r.stdout
    assert f"Digest: {app['manifest']}" in r.stdout
    assert r.stdout.rstrip().endswith(f"Status: Downloaded newer image for {name}:v1\n{name}:v1")
    _rmi(daemon, f"{name}:v1", f"{name}@{app['manifest']}")
    r = daemon.docker("pull", f"{name}@{app['manifest']}")
    assert r.returncode == 0, r.stderr
    assert f"Status: Downloaded newer image for {name}@{app['manifest']}" in r.stdout
    imgs = daemon.docker("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
    assert f"{name} <none> {app['manifest']}" in imgs.stdout
    run = daemon.docker("run", "--rm", f"{name}@{app['manifest']}")
    assert run.returncode == 0 and run.stdout == "hi from registry\n", run.stderr


def test_docker_py_and_dockyard_cli_pull(daemon: TestDaemon, plain: Registry, app: dict[str, object]) -> None:
    name = f"{plain.host}/team/app"
    _rmi(daemon, f"{name}:v1", f"{name}@{app['manifest']}")
    client = daemon.client()
    img = client.images.pull(name, tag="v1")
    assert img.id == app["config"]
    assert f"{name}:v1" in img.tags
    events = list(client.api.pull(name, tag="v1", stream=True, decode=True))
    assert events[-1]["status"] == f"Status: Image is up to date for {name}:v1"
    _rmi(daemon, f"{name}:v1", f"{name}@{app['manifest']}")
    r = daemon.cli("pull", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "v1: Pulling from team/app"
    assert any(line.endswith(": Pull complete") for line in lines)
    assert not any("Downloading" in line for line in lines)  # no progress bars off a terminal
    assert lines[-1] == f"{name}:v1"
    r = daemon.cli("pull", "-q", f"{name}:v1")
    assert r.returncode == 0 and r.stdout == f"{name}:v1\n", r.stdout


def test_pull_all_tags(daemon: TestDaemon, plain: Registry) -> None:
    a = seed_image(plain, "team/multi", "one", [files_layer({"a": b"1"})])
    b = seed_image(plain, "team/multi", "two", [files_layer({"b": b"2"})])
    r = daemon.cli("pull", "-a", f"{plain.host}/team/multi")
    assert r.returncode == 0, r.stderr
    for tag, img in (("one", a), ("two", b)):
        st, info = daemon.api_json("GET", f"/images/{plain.host}/team/multi:{tag}/json")
        assert st == 200 and info["Id"] == img["config"]
    assert f"Status: Downloaded newer image for {plain.host}/team/multi" in r.stdout


def test_errors_as_docker_gives_them(daemon: TestDaemon, plain: Registry, app: dict[str, object]) -> None:
    name = f"{plain.host}/team/app"
    status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=nope")
    assert status == 404
    assert json.loads(body)["message"] == f"manifest for {name}:nope not found: manifest unknown: manifest unknown"
    r = daemon.docker("pull", f"{plain.host}/team/nothing-here")
    assert r.returncode == 1
    assert "not found: manifest unknown" in r.stderr or "repository name not known" in r.stderr, r.stderr
    from helpers.registry import free_port

    port = free_port()
    r = daemon.docker("pull", f"127.0.0.1:{port}/team/app:v1")
    assert r.returncode == 1
    assert r.stderr.strip() == (f'Error response from daemon: Get "http://127.0.0.1:{port}/v2/": dial tcp '
                                f'127.0.0.1:{port}: connect: connection refused'), r.stderr
    status, _, body = daemon.api("POST", "/images/create?fromImage=Bad..Name&tag=x")
    assert status == 400


def test_corrupted_blob_is_refused_and_nothing_is_committed(daemon: TestDaemon, plain: Registry) -> None:
    data = os.urandom(300_000)
    img = seed_image(plain, "team/corrupt", "v1", [files_layer({"big.bin": data}), files_layer({"x": b"y"})])
    digest = str(img["layers"][0])  # type: ignore[index]
    hexd = digest.split(":")[1]
    path = os.path.join(plain.root, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")
    with open(path, "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    before = _layer_dirs(daemon)
    status, _, body = daemon.api("POST", f"/images/create?fromImage={plain.host}/team/corrupt&tag=v1")
    text = body.decode()
    assert f"filesystem layer verification failed for digest {digest}" in text, text
    assert daemon.api("GET", f"/images/{plain.host}/team/corrupt:v1/json")[0] == 404
    assert _layer_dirs(daemon) == before
    tmp_left = [n for n in os.listdir(os.path.join(daemon.data_root, "layers")) if n.startswith(".tmp")]
    assert not tmp_left


def test_oci_index_selects_the_platform(daemon: TestDaemon, plain: Registry) -> None:
    idx = seed_index(plain, "team/multiarch", "v1", {
        "amd64": [busybox_layer(), files_layer({"arch": b"amd64\n"})],
        "arm64": [files_layer({"arch": b"arm64\n"})]})
    name = f"{plain.host}/team/multiarch"
    r = daemon.docker("pull", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    assert f"Digest: {idx['index']}" in r.stdout
    st, info = daemon.api_json("GET", f"/images/{name}:v1/json")
    assert info["Id"] == idx["amd64"]["config"] and info["Architecture"] == "amd64"
    assert info["RepoDigests"] == [f"{name}@{idx['index']}"]
    r = daemon.docker("pull", "--platform", "linux/arm64", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    st, info = daemon.api_json("GET", f"/images/{name}:v1/json")
    assert info["Id"] == idx["arm64"]["config"] and info["Architecture"] == "arm64"
    status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1&platform=linux/s390x")
    assert status == 404 and b"no matching manifest for linux/s390x" in body


def test_basic_auth_pull(daemon: TestDaemon, reg_tmp: str) -> None:
    with running_registry(reg_tmp, "basic", users={"bob": "builder"}) as reg:
        seed_image(reg, "private/app", "v1", [files_layer({"f": b"basic"})])
        name = f"{reg.host}/private/app"
        status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1")
        assert status == 500 and b"no basic auth credentials" in body, body
        status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1",
                                     headers={"X-Registry-Auth": _auth("bob", "builder")})
        assert status == 200 and b"Status: Downloaded newer image" in body, body


def test_token_auth_pull(daemon: TestDaemon, reg_tmp: str) -> None:
    with running_registry(reg_tmp, "token", users={"alice": "secret"}) as reg:
        img = seed_image(reg, "private/app", "v1", [files_layer({"f": b"token"})])
        name = f"{reg.host}/private/app"
        status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1")
        assert status == 404
        assert json.loads(body)["message"] == (
            f"pull access denied for {name}, repository does not exist or may require 'docker login': "
            "denied: requested access to the resource is denied")
        client = daemon.client()
        pulled = client.images.pull(name, tag="v1", auth_config={"username": "alice", "password": "secret"})
        assert pulled.id == img["config"]
        assert reg.tokens is not None
        grants = [g for g in reg.tokens.issued if g["user"] == "alice"]
        assert grants and all(g["scopes"] == ["repository:private/app:pull"] for g in grants)
        assert len(grants) == 1  # one token served the whole pull (cached)


def test_tls_registry_trusted_through_certs_d(daemon: TestDaemon, reg_tmp: str, certs_dir: str) -> None:
    with running_registry(reg_tmp, "tls", client_ca=True) as reg:
        seed_image(reg, "secure/app", "v1", [files_layer({"f": b"tls"})])
        name = f"{reg.host}/secure/app"
        # the registry demands a client certificate: without certs.d the pull cannot get through
        status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1")
        assert status != 200 or b"error" in body
        trust(reg, certs_dir)
        status, _, body = daemon.api("POST", f"/images/create?fromImage={name}&tag=v1")
        assert status == 200 and b"Status: Downloaded newer image" in body, body
