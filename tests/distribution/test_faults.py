"""Faults during a pull: a connection cut mid-blob is resumed with Range, a token expiring mid-pull is
refreshed, a cut that never heals fails the pull and leaves nothing, and the next pull completes."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon
from helpers.registry import FaultProxy, Registry, files_layer, running_registry, seed_image


def _layer_dirs(daemon: TestDaemon) -> set[str]:
    d = os.path.join(daemon.data_root, "layers")
    return {n for n in os.listdir(d) if n not in ("l", "empty")}


@pytest.fixture(scope="module")
def plain(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "http") as reg:
        yield reg


@pytest.fixture()
def proxy(plain: Registry) -> Iterator[FaultProxy]:
    p = FaultProxy(plain.port)
    yield p
    p.close()


def test_cut_mid_blob_is_resumed_with_range(daemon: TestDaemon, plain: Registry, proxy: FaultProxy) -> None:
    img = seed_image(plain, "faults/cut", "v1", [files_layer({"big.bin": os.urandom(3_000_000)})])
    digest = str(img["layers"][0])  # type: ignore[index]
    proxy.match, proxy.cut_after, proxy.cuts = f"/blobs/{digest}", 1_000_000, 2
    status, _, body = daemon.api("POST", f"/images/create?fromImage={proxy.host}/faults/cut&tag=v1", timeout=120)
    assert status == 200 and b"Status: Downloaded newer image" in body, body
    ranged = [r for r in proxy.requests if digest in r.split("\r\n", 1)[0] and "\r\nRange: bytes=" in r]
    assert len(ranged) == 2, proxy.requests
    start = int(ranged[0].split("\r\nRange: bytes=", 1)[1].split("-", 1)[0])
    assert 0 < start <= 1_000_000  # resumed from what had arrived, not from the start
    st, info = daemon.api_json("GET", f"/images/{proxy.host}/faults/cut:v1/json")
    assert info["Id"] == img["config"]


def test_cut_that_never_heals_leaves_nothing_and_the_next_pull_completes(
        daemon: TestDaemon, plain: Registry, proxy: FaultProxy) -> None:
    img = seed_image(plain, "faults/dead", "v1", [files_layer({"a.bin": os.urandom(2_000_000)}),
                                                  files_layer({"b.bin": os.urandom(500_000)})])
    digest = str(img["layers"][0])  # type: ignore[index]
    proxy.match, proxy.cut_after, proxy.cuts = f"/blobs/{digest}", 300_000, 100
    before = _layer_dirs(daemon)
    status, _, body = daemon.api("POST", f"/images/create?fromImage={proxy.host}/faults/dead&tag=v1", timeout=120)
    assert b'"error"' in body, body
    assert daemon.api("GET", f"/images/{proxy.host}/faults/dead:v1/json")[0] == 404
    assert _layer_dirs(daemon) == before  # the layer that did finish is gone again: no half image
    assert not [n for n in os.listdir(os.path.join(daemon.data_root, "layers")) if n.startswith(".tmp")]
    proxy.cuts = 0
    status, _, body = daemon.api("POST", f"/images/create?fromImage={proxy.host}/faults/dead&tag=v1", timeout=120)
    assert status == 200 and b"Status: Downloaded newer image" in body, body


def test_token_expiring_mid_pull_is_refreshed(daemon: TestDaemon, reg_tmp: str) -> None:
    with running_registry(reg_tmp, "token", users={"alice": "secret"}, token_expires_in=2,
                          token_exp_skew=60) as reg:
        img = seed_image(reg, "faults/token", "v1", [files_layer({"slow.bin": os.urandom(1_500_000)})])
        digest = str(img["layers"][0])  # type: ignore[index]
        proxy = FaultProxy(reg.port)
        try:
            # 1.5 MB at 400 kB/s with a cut after 1 MB: the resumed request comes after the token expired
            proxy.match, proxy.rate, proxy.cut_after, proxy.cuts = f"/blobs/{digest}", 400_000, 1_000_000, 1
            auth = base64.urlsafe_b64encode(json.dumps({"username": "alice", "password": "secret"}).encode())
            t0 = time.monotonic()
            status, _, body = daemon.api("POST", f"/images/create?fromImage={proxy.host}/faults/token&tag=v1",
                                         headers={"X-Registry-Auth": auth.decode()}, timeout=120)
            assert status == 200 and b"Status: Downloaded newer image" in body, body
            assert time.monotonic() - t0 > 2  # the pull did outlive the first token
            assert reg.tokens is not None
            assert len([g for g in reg.tokens.issued if g["user"] == "alice"]) >= 2
            blob_heads = [r.split("\r\n", 1)[0] for r in proxy.requests if digest in r.split("\r\n", 1)[0]]
            assert len(blob_heads) >= 2
        finally:
            proxy.close()
