"""Named and anonymous volumes with the local driver."""

from __future__ import annotations

import os

import docker
import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


def test_named_volume_lifecycle(daemon: TestDaemon, client: docker.DockerClient) -> None:
    v = client.volumes.create("data1", labels={"k": "v"})
    assert v.attrs["Mountpoint"] == os.path.join(daemon.data_root, "volumes", "data1", "_data")
    assert v.attrs["Driver"] == "local" and v.attrs["Labels"] == {"k": "v"}
    c = client.containers.run("busybox", ["sh", "-c", "echo kept > /d/f"], detach=True,
                              volumes={"data1": {"bind": "/d", "mode": "rw"}})
    assert c.wait(timeout=10)["StatusCode"] == 0
    with open(os.path.join(v.attrs["Mountpoint"], "f")) as f:
        assert f.read() == "kept\n"
    c.reload()
    assert c.attrs["Mounts"][0]["Type"] == "volume" and c.attrs["Mounts"][0]["Name"] == "data1"
    status, body = daemon.api_json("DELETE", "/volumes/data1")
    assert status == 409 and body["message"] == f"remove data1: volume is in use - [{c.id}]"
    c.remove()
    assert [x.name for x in client.volumes.list(filters={"label": "k=v"})] == ["data1"]
    v.remove()
    status, body = daemon.api_json("GET", "/volumes/data1")
    assert status == 404 and body["message"] == "get data1: no such volume"
    assert not os.path.exists(os.path.join(daemon.data_root, "volumes", "data1"))


def test_implicit_named_and_anonymous(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["true"], volumes=["auto1:/a", "/anon"])
    names = {v.name for v in client.volumes.list()}
    assert "auto1" in names
    anon = [m for m in daemon.api_json("GET", f"/containers/{c.id}/json")[1]["HostConfig"]["Binds"]]
    assert anon == ["auto1:/a", "/anon"]
    before = {v.name for v in client.volumes.list()}
    c.remove(v=True)
    after = {v.name for v in client.volumes.list()}
    assert "auto1" in after and len(before - after) == 1  # the anonymous one went with -v
    # the `all` filter is API 1.42's; before it a prune removes named volumes too
    res = client.volumes.prune(filters={"all": "true"} if daemon.api_version >= "1.42" else None)
    assert "auto1" in (res["VolumesDeleted"] or [])


def test_new_volume_copies_image_content(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["cat", "/etc/passwd"], detach=True,
                              volumes={"copyup": {"bind": "/etc", "mode": "rw"}})
    try:
        assert c.wait(timeout=10)["StatusCode"] == 0
        mp = client.volumes.get("copyup").attrs["Mountpoint"]
        assert os.path.exists(os.path.join(mp, "passwd")) and os.path.exists(os.path.join(mp, "group"))
    finally:
        c.remove()
        client.volumes.get("copyup").remove()
