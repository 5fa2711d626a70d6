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
        run("volume", "rm", f"named-{cli}", f"named2-{cli}")


def test_volumes_from_refusals(d: TestDaemon) -> None:
    """A missing source is docker's 404 (the docker CLI then even tries to pull the image), a bad mode a 400;
    neither leaves a container behind."""
    before = d.api_json("GET", "/containers/json?all=1")[1]
    status, body = d.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["no-such-source"]}})
    assert (status, body["message"]) == (404, "No such container: no-such-source")
    status, body = d.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["x:rx"]}})
    assert status == 400, body
    assert d.api_json("GET", "/containers/json?all=1")[1] == before
