"""A pulled layer keeps no second copy of its tar: the unpacked files plus tar-split metadata. ``save`` and
``push`` then rebuild the very tar (byte for byte, same diff ID) from the unpacked layer; a layer whose tar
cannot be rebuilt from its files (a name twice) is kept whole instead, and round-trips all the same."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon
from helpers.registry import Registry, busybox_layer, running_registry, seed_image


@pytest.fixture(scope="module")
def plain(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "http") as reg:
        yield reg


@pytest.fixture(scope="module")
def other(reg_tmp: str) -> Iterator[Registry]:
    """A second registry: a push there cannot mount or skip, it compresses the layer from its tar."""
    with running_registry(reg_tmp, "http") as reg:
        yield reg


def _entry(tf: tarfile.TarFile, name: str, data: bytes | None = None, **kw: object) -> None:
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    if data is None:
        tf.addfile(ti)
    else:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))


def _rich_layer(duplicate: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _entry(tf, "data", type=tarfile.DIRTYPE, mode=0o755, mtime=1_700_000_000)
        _entry(tf, "data/big.bin", os.urandom(3 << 20), mode=0o644, uid=1000, gid=1000, mtime=1_700_000_001)
        for i in range(40):
            _entry(tf, f"data/small{i}.txt", f"small file {i}\n".encode() * i, mode=0o600)
        _entry(tf, "data/" + "very-long-name-" * 12, b"pax path", mode=0o644)
        _entry(tf, "data/caf\u00e9.txt", b"utf-8 name", mode=0o644)
        _entry(tf, "data/link", type=tarfile.SYMTYPE, linkname="big.bin")
        _entry(tf, "data/hard", type=tarfile.LNKTYPE, linkname="data/small3.txt")
        _entry(tf, "marker", b"rebuilt\n", mode=0o644)
        if duplicate:
            _entry(tf, "marker", b"second copy wins\n", mode=0o644)
    return buf.getvalue()


def _saved_layers(daemon: TestDaemon, name: str) -> dict[str, bytes]:
    r = daemon.api("GET", f"/images/get?names={name}", timeout=120)
    assert r[0] == 200, r[2][:300]
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(r[2])) as tf:
        for m in tf.getmembers():
            if m.isfile() and m.name.startswith("blobs/sha256/"):
                f = tf.extractfile(m)
                assert f is not None
                out["sha256:" + m.name.rsplit("/", 1)[1]] = f.read()
    return out


def _blob_path(daemon: TestDaemon, digest: str) -> str:
    return os.path.join(daemon.data_root, "blobs", "sha256", digest.split(":", 1)[1])


@pytest.mark.parametrize("duplicate", [False, True], ids=["split", "kept-whole"])
def test_pulled_layer_saves_and_pushes_the_identical_tar(daemon: TestDaemon, plain: Registry, other: Registry,
                                                        duplicate: bool) -> None:
    layers = [busybox_layer(), _rich_layer(duplicate)]
    repo = f"split/{'dup' if duplicate else 'rich'}"
    seeded = seed_image(plain, repo, "v1", layers, cmd=["cat", "/marker"])
    name = f"{plain.host}/{repo}:v1"
    r = daemon.docker("pull", name)
    assert r.returncode == 0, r.stderr
    rich_diff = seeded["diff_ids"][1]
    # the pulled layer's tar is not stored a second time (unless it cannot be rebuilt from its files)
    assert os.path.exists(_blob_path(daemon, rich_diff)) is duplicate
    run = daemon.docker("run", "--rm", name, "cat", "/marker")
    assert run.stdout == ("second copy wins\n" if duplicate else "rebuilt\n"), run.stderr

    saved = _saved_layers(daemon, name)
    for tar_bytes, diff_id in zip(layers, seeded["diff_ids"], strict=True):
        assert saved[diff_id] == tar_bytes  # byte for byte what the registry had

    # push to another registry: the layer is compressed from the rebuilt tar; it unpacks to the same diff ID
    target = f"{other.host}/{repo}:v1"
    assert daemon.docker("tag", name, target).returncode == 0
    r = daemon.docker("push", target)
    assert r.returncode == 0, r.stderr
    status, _, body = other.get_manifest(repo, "v1", "application/vnd.docker.distribution.manifest.v2+json")
    assert status == 200
    manifest = json.loads(body)
    for desc, diff_id in zip(manifest["layers"], seeded["diff_ids"], strict=True):
        st, _, blob = other.request("GET", f"/v2/{repo}/blobs/{desc['digest']}")
        assert st == 200
        assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id
    daemon.api("DELETE", f"/images/{target}?force=1")
    daemon.api("DELETE", f"/images/{name}?force=1")


def test_changed_layer_files_fail_save_instead_of_lying(daemon: TestDaemon, plain: Registry, other: Registry) -> None:
    seeded = seed_image(plain, "split/tamper", "v1", [_rich_layer()], cmd=["sh"])
    name = f"{plain.host}/split/tamper:v1"
    assert daemon.docker("pull", name).returncode == 0
    diff_id = seeded["diff_ids"][0]
    layer_dir = os.path.join(daemon.data_root, "layers", diff_id.split(":", 1)[1])
    with open(os.path.join(layer_dir, "diff", "marker"), "r+b") as f:
        f.write(b"R")  # same size, other content: only the digest check can tell
    r = daemon.docker("save", "-o", os.path.join(daemon.tmp, "tampered.tar"), name)
    assert r.returncode != 0 and "unexpected EOF" in r.stderr, r.stderr  # the stream is cut, as dockerd does
    # a push (to a registry that cannot mount the pulled blob) refuses the layer before a manifest names it
    target = f"{other.host}/split/tampered:v1"
    assert daemon.docker("tag", name, target).returncode == 0
    r = daemon.docker("push", target)
    assert r.returncode != 0 and f"layer {diff_id} rebuilt from its files has another digest" in r.stderr, r.stderr
    assert other.get_manifest("split/tampered", "v1", "application/vnd.docker.distribution.manifest.v2+json")[0] == 404
    daemon.api("DELETE", f"/images/{target}?force=1")
    daemon.api("DELETE", f"/images/{name}?force=1")
