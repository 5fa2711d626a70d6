"""--volumes-from and anonymous volumes, end to end with the dockyard CLI and the docker CLI: the seeds'
backup/restore recipe, :ro/:rw, a source that is stopped or only created, and volumes in use staying."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator

import pytest

from helpers.daemon import TestDaemon

CLIS = ["dockyard", "docker"]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> TestDaemon:
    return daemon


@pytest.fixture()
def workdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="dyvf") as tmp:
        yield tmp


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


@pytest.mark.parametrize("cli", CLIS)
def test_backup_and_restore_recipe(d: TestDaemon, cli: str, workdir: str) -> None:
    run = d.cli if cli == "dockyard" else d.docker
    db, db2 = f"db-{cli}", f"db2-{cli}"
    try:
        # a source that ran and stopped, with an anonymous volume (-v /data) and a named one
        _ok(run("run", "--name", db, "-v", "/data", "-v", f"named-{cli}:/named", "busybox",
                "sh", "-c", "echo precious > /data/file; echo more > /named/n"))
        _ok(run("run", "--rm", "--volumes-from", db, "-v", f"{workdir}:/backup", "busybox",
                "tar", "cf", "/backup/b.tar", "/data", "/named"))
        assert os.path.getsize(os.path.join(workdir, "b.tar")) > 0
        # restore into a new, only created container's volumes
        _ok(run("create", "--name", db2, "-v", "/data", "-v", f"named2-{cli}:/named", "busybox", "true"))
        _ok(run("run", "--rm", "--volumes-from", db2, "-v", f"{workdir}:/backup", "busybox",
                "tar", "xf", "/backup/b.tar"))
        assert _ok(run("run", "--rm", "--volumes-from", db2, "busybox", "cat", "/data/file", "/named/n")) == \
            "precious\nmore\n"
        # :ro makes them read-only in the new container, :rw (and the default) writable
        r = run("run", "--rm", "--volumes-from", f"{db2}:ro", "busybox", "touch", "/data/x")
        assert r.returncode != 0 and "Read-only file system" in r.stderr
        _ok(run("run", "--rm", "--volumes-from", f"{db2}:rw", "busybox", "touch", "/data/x"))
        # a volume another container still uses survives rm -v of its owner
        keep = _ok(run("create", "--volumes-from", db, "busybox", "true")).strip()
        _ok(run("rm", "-v", db))
        assert _ok(run("start", "-a", keep)) == ""
        _ok(run("run", "--rm", "--volumes-from", keep, "busybox", "cat", "/data/file"))
        _ok(run("rm", "-v", keep))
    finally:
        run("rm", "-f", "-v", db, db2)
        d.docker("volume", "rm", f"named-{cli}", f"named2-{cli}")


def test_volumes_from_refusals(d: TestDaemon) -> None:
    """A missing source and a bad mode are dockerd's 400s (its messages, checked on dockerd 20.10); neither
    leaves a container behind."""
    before = d.api_json("GET", "/containers/json?all=1")[1]
    status, body = d.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["no-such-source"]}})
    assert (status, body["message"]) == (400, "No such container: no-such-source")
    status, body = d.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["x:rx"]}})
    assert (status, body["message"]) == (400, "invalid mode: rx")
    assert d.api_json("GET", "/containers/json?all=1")[1] == before


def test_anonymous_volume_exists_from_create_and_takes_a_copy(d: TestDaemon, workdir: str) -> None:
    """docker-py's test_copy_file_to_container: PUT /archive into a VOLUME path of a never-started container
    lands in its anonymous volume, which exists from create on."""
    import io
    import tarfile

    client = d.client()
    c = client.api.create_container("busybox", "cat /vol1/f", volumes=["/vol1"])
    try:
        mounts = client.api.inspect_container(c)["Mounts"]
        assert [(m["Type"], m["Destination"], m["Driver"], m["RW"]) for m in mounts] == \
            [("volume", "/vol1", "local", True)]
        name = mounts[0]["Name"]
        assert client.api.inspect_volume(name)["Mountpoint"] == mounts[0]["Source"]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("f")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"data"))
        assert client.api.put_archive(c, "/vol1", buf.getvalue())
        client.api.start(c)
        assert client.api.wait(c, timeout=30)["StatusCode"] == 0
        assert client.api.logs(c) == b"data"
    finally:
        client.api.remove_container(c, force=True, v=True)


def test_mounts_in_inspect_as_docker_shows_them(d: TestDaemon, workdir: str) -> None:
    """--mount type=volume / type=bind and HostConfig.Mounts: inspect's Mounts from create on, with docker's
    fields and values (binds are rprivate)."""
    cid = d.cli("create", "--mount", "type=volume,source=mnt-vol,target=/mv", "--mount",
                f"type=bind,source={workdir},target=/mb,readonly", "-v", "mnt-v:/v", "busybox", "true").stdout.strip()
    try:
        assert cid
        client = d.client()
        got = {m["Destination"]: m for m in client.api.inspect_container(cid)["Mounts"]}
        vol_dir = client.api.inspect_volume("mnt-vol")["Mountpoint"]
        assert {k: v for k, v in got["/mv"].items() if k != "Mode"} == {
            "Type": "volume", "Name": "mnt-vol", "Source": vol_dir, "Destination": "/mv", "Driver": "local",
            "RW": True, "Propagation": ""}
        assert got["/mb"] == {"Type": "bind", "Source": workdir, "Destination": "/mb", "Mode": "", "RW": False,
                              "Propagation": "rprivate"}
        assert got["/v"]["Mode"] == "z" and got["/v"]["Name"] == "mnt-v"
        assert d.cli("start", "-a", cid).returncode == 0
        after = {m["Destination"]: m for m in client.api.inspect_container(cid)["Mounts"]}
        assert after == got  # the same once it ran
    finally:
        d.cli("rm", "-f", cid)
        d.docker("volume", "rm", "mnt-vol", "mnt-v")
