"""Spec features seen from inside the container: privileged caps, --init, binds, read-only rootfs, OOM kill.

Output comes back through a bind-mounted host directory, so these tests need only the container lifecycle.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import docker
import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


@pytest.fixture()
def outdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyo", dir="/tmp")
    os.chmod(d, 0o777)
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def _run(client: docker.DockerClient, outdir: str, script: str, **kw: object) -> tuple[int, str]:
    kw.setdefault("volumes", {outdir: {"bind": "/out", "mode": "rw"}})
    c = client.containers.run("busybox", ["sh", "-c", script], detach=True, **kw)
    try:
        code = c.wait(timeout=30)["StatusCode"]
        c.reload()
        path = os.path.join(outdir, "o")
        text = open(path).read() if os.path.exists(path) else ""
        return code, text
    finally:
        c.remove(force=True)


def _host_bounding_hex() -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return line.split()[1]
    raise AssertionError("no CapBnd")


def test_privileged_gets_host_bounding_set(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "grep CapEff /proc/self/status > /out/o", privileged=True)
    assert code == 0
    assert text.split()[1] == _host_bounding_hex()


def test_default_caps_are_dockers(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "grep CapEff /proc/self/status > /out/o")
    assert code == 0
    assert text.split()[1] == "00000000a80425fb"  # docker's default 14 capabilities


def test_cap_drop_all(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "grep CapEff /proc/self/status > /out/o", cap_drop=["ALL"])
    assert code == 0 and text.split()[1] == "0000000000000000"


def test_init_is_pid1(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "cat /proc/1/cmdline | tr '\\0' ' ' > /out/o", init=True)
    assert code == 0
    assert text.startswith("/sbin/docker-init -- sh -c")


def test_bind_mount_rw_and_ro(client: docker.DockerClient, outdir: str) -> None:
    ro = tempfile.mkdtemp(prefix="dyr", dir="/tmp")
    try:
        with open(os.path.join(ro, "f"), "w") as f:
            f.write("host\n")
        code, text = _run(client, outdir, "cat /ro/f > /out/o; touch /ro/x 2>>/out/o; echo rc=$? >> /out/o",
                          volumes={outdir: {"bind": "/out", "mode": "rw"}, ro: {"bind": "/ro", "mode": "ro"}})
        assert code == 0
        assert text.startswith("host\n") and "Read-only file system" in text and text.endswith("rc=1\n")
        assert not os.path.exists(os.path.join(ro, "x"))
    finally:
        for n in os.listdir(ro):
            os.unlink(os.path.join(ro, n))
        os.rmdir(ro)


def test_bind_source_created_like_docker(daemon: TestDaemon, client: docker.DockerClient, outdir: str) -> None:
    missing = os.path.join(outdir, "made")
    code, _ = _run(client, outdir, "touch /m/x", volumes={outdir: {"bind": "/out", "mode": "rw"},
                                                           missing: {"bind": "/m", "mode": "rw"}})
    assert code == 0 and os.path.exists(os.path.join(missing, "x"))
    os.unlink(os.path.join(missing, "x"))
    os.rmdir(missing)


def test_read_only_rootfs(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "touch /etc/x 2>/out/o; echo rc=$? >> /out/o; touch /tmp/y 2>>/out/o; "
                                      "touch /dev/shm/ok && echo shm-ok >> /out/o", read_only=True)
    assert code == 0
    assert "Read-only file system" in text and "rc=1" in text and "shm-ok" in text


def test_oom_killed(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "x=a; while :; do x=$x$x$x$x; done"], detach=True,
                              mem_limit="8m", memswap_limit="8m")
    try:
        assert c.wait(timeout=60)["StatusCode"] == 137
        c.reload()
        assert c.attrs["State"]["OOMKilled"] is True and c.attrs["State"]["ExitCode"] == 137
    finally:
        c.remove(force=True)


def test_env_user_workdir_hostname(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "{ id -u; id -g; pwd; hostname; echo $FOO; echo $PATH; } > /out/o",
                      environment={"FOO": "bar"}, user="65534:65534", working_dir="/tmp", hostname="hn")
    assert code == 0
    assert text.split("\n")[:6] == ["65534", "65534", "/tmp", "hn", "bar",
                                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_unknown_user_fails_start(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["true"], user="nosuchuser")
    try:
        status, body = daemon.api_json("POST", f"/containers/{c.id}/start")
        assert status == 400
        assert body["message"] == "unable to find user nosuchuser: no matching entries in passwd file"
        assert not os.path.ismount(os.path.join(daemon.data_root, "snapshots", c.id, "merged"))
    finally:
        c.remove(force=True)
