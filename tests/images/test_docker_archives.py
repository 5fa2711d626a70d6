"""Archives crossing between real docker and dockyard.

docker20-save.tar was written by a real dockerd (Debian docker.io 20.10); dockyard-save.tar was written by
dockyard and loaded by that same real dockerd (see the .json beside each: what was made and what was seen).
"""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from helpers.daemon import TestDaemon

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _fixture(name: str) -> tuple[bytes, dict]:
    with open(os.path.join(FIXTURES, name + ".tar"), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        meta = json.load(f)
    return data, meta


def _run_output(daemon: TestDaemon, image: str) -> bytes:
    client = daemon.client()
    try:
        return bytes(client.containers.run(image, remove=True))
    finally:
        client.close()


def test_real_docker_archive_loads_with_identical_ids(daemon: TestDaemon) -> None:
    data, meta = _fixture("docker20-save")
    client = daemon.client()
    try:
        loaded = client.images.load(data)
        assert sorted(t for img in loaded for t in img.tags) == sorted(meta["images"])
        for ref, want in meta["images"].items():
            img = client.images.get(ref)
            assert img.id == want["id"]
            assert img.attrs["RootFS"]["Layers"] == want["diff_ids"]
        two = meta["images"]["fixture/two:latest"]
        assert _run_output(daemon, "fixture/two:latest").decode() == two["run_output"]
        env = client.images.get("fixture/two:latest").attrs["Config"]["Env"]
        assert "GREETING=hi" in env
    finally:
        for ref in meta["images"]:
            client.images.remove(ref, force=True)
        client.close()


@pytest.mark.dockyard_only("docker 25+ saves an OCI layout (blobs/sha256, index.json); dockerd 20.10 writes the legacy layout only")
def test_dockyard_archive_accepted_by_real_docker_still_loads_and_saves_the_same(daemon: TestDaemon) -> None:
    data, meta = _fixture("dockyard-save")
    client = daemon.client()
    try:
        client.images.load(data)
        img = client.images.get(meta["image"])
        assert img.id == meta["id"]
        assert img.attrs["RootFS"]["Layers"] == meta["diff_ids"]
        assert _run_output(daemon, meta["image"]).decode() == meta["run_output"]
        # what we write today must stay what real docker accepted: same manifest, same blobs
        again = b"".join(img.save(named=True))
        with tarfile.open(fileobj=io.BytesIO(data)) as old, tarfile.open(fileobj=io.BytesIO(again)) as new:
            old_names = sorted(n for n in old.getnames() if n.startswith("blobs/sha256/"))
            new_names = sorted(n for n in new.getnames() if n.startswith("blobs/sha256/"))
            assert new_names == old_names
            for name in ("manifest.json", "repositories", "index.json"):
                a, b = old.extractfile(name), new.extractfile(name)
                assert a is not None and b is not None
                assert json.loads(b.read()) == json.loads(a.read()), name
    finally:
        client.images.remove(meta["image"], force=True)
        client.close()


@pytest.mark.parametrize("fixture", ["docker20-save", "dockyard-save"])
def test_fixture_archives_are_what_their_notes_say(fixture: str) -> None:
    data, meta = _fixture(fixture)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    tags = sorted(t for m in manifest for t in m["RepoTags"])
    want = sorted(meta["images"]) if "images" in meta else [meta["image"]]
    assert tags == want
