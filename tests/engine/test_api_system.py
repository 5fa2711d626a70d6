"""System endpoints: /_ping, /version, /info, swarm refusals, /events."""

from __future__ import annotations

import json
import os
import socket

import pytest

from helpers.daemon import TestDaemon

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
               'this node to swarm and try again.')


def test_ping_get_and_head(daemon: TestDaemon) -> None:
    status, headers, body = daemon.api("GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == daemon.api_version
    assert headers["ostype"] == "linux"
    assert headers["docker-experimental"] == "false"
    assert "no-cache" in headers["cache-control"] and headers["pragma"] == "no-cache"
    status, headers, body = daemon.api("HEAD", "/_ping")
    assert status == 200 and body == b""


def test_version_shape(daemon: TestDaemon) -> None:
    status, v = daemon.api_json("GET", f"/v{daemon.api_version}/version")
    assert status == 200
    assert v["ApiVersion"] == daemon.api_version
    assert v["Components"][0]["Name"] == "Engine"
    for key in ("Version", "MinAPIVersion", "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion", "BuildTime", "Platform"):
        assert key in v


@pytest.mark.dockyard_only("dockyard's identity: API 1.47, its Python runtime as GoVersion, its own runtime, "
                           "its builder (dockerd 20.10 sends no Builder-Version)")
def test_version_and_info_name_dockyard(daemon: TestDaemon) -> None:
    assert daemon.api("GET", "/_ping")[1]["builder-version"] == "1"
    status, v = daemon.api_json("GET", "/v1.47/version")
    assert status == 200 and v["ApiVersion"] == "1.47" and v["MinAPIVersion"] == "1.24"
    assert v["GoVersion"].startswith("python3.")
    status, info = daemon.api_json("GET", "/info")
    assert info["DefaultRuntime"] == "dockyard" and "runc" in info["Runtimes"]
    # docker 23+ names its default seccomp profile "builtin"; dockerd 20.10 says "default"
    assert info["SecurityOptions"] == ["name=seccomp,profile=builtin"]


def test_info_shape(daemon: TestDaemon) -> None:
    status, info = daemon.api_json("GET", "/info")
    assert status == 200
    assert info["Driver"] == "overlay2" and info["CgroupDriver"] == "cgroupfs"
    assert info["CgroupVersion"] == ("2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1")
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["DockerRootDir"] == daemon.data_root
    assert "runc" in info["Runtimes"] and info["DefaultRuntime"] in info["Runtimes"]
    assert info["NCPU"] >= 1 and info["MemTotal"] > 0
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "ID",
                "Name", "ServerVersion", "OperatingSystem", "KernelVersion", "Plugins"):
        assert key in info


@pytest.mark.dockyard_only("scope ledger: dockyard has no swarm; dockerd 20.10 has it and answers these")
def test_swarm_endpoints_refuse(daemon: TestDaemon) -> None:
    for method, path in (("GET", "/swarm"), ("GET", "/services"), ("GET", "/nodes"), ("GET", "/secrets"),
                         ("GET", "/configs"), ("GET", "/tasks"), ("POST", "/swarm/init")):
        status, body = daemon.api_json(method, path)
        assert status == 503, path
        assert body == {"message": NOT_MANAGER}
    assert daemon.api_json("GET", "/plugins") == (200, [])


def test_unknown_version_too_new(daemon: TestDaemon) -> None:
    status, body = daemon.api_json("GET", "/v9.99/version")
    assert status == 400 and "too new" in body["message"]


def test_events_until_returns(daemon: TestDaemon) -> None:
    import time

    now = time.time()
    status, _, body = daemon.api("GET", f"/events?since={now - 5}&until={now + 0.5}", timeout=10)
    assert status == 200
    for line in body.splitlines():
        json.loads(line)


def test_docker_cli_version_and_info(daemon: TestDaemon) -> None:
    r = daemon.docker("version", "--format", "{{.Server.APIVersion}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == daemon.api_version
    r = daemon.docker("info", "--format", "{{.Driver}} {{.Swarm.LocalNodeState}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "overlay2 inactive"


def test_docker_py_ping(daemon: TestDaemon) -> None:
    c = daemon.client()
    assert c.ping() is True
    assert c.version()["ApiVersion"] == daemon.api_version


def test_many_connections_at_once_are_all_accepted(daemon: TestDaemon) -> None:
    """A burst of non-blocking connects (what Go clients do) must not hit a full listen backlog (EAGAIN)."""
    socks = []
    try:
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            s.connect(daemon.socket)  # BlockingIOError when the backlog is full
        for s in socks:
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for s in socks:
            assert s.recv(12) == b"HTTP/1.1 200"
    finally:
        for s in socks:
            s.close()
