"""Legacy links on the default bridge (`--link name:alias`, HostConfig.Links), through docker-py and both CLIs:
docker's link variables, /etc/hosts entries, the stored form, and DELETE /containers/{parent}/{alias}."""

from __future__ import annotations

import docker
import pytest

from helpers.daemon import TestDaemon
from helpers.dockerd import DockerdTarget


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


def test_link_env_and_hosts(client: docker.DockerClient) -> None:
    api = client.api
    target = api.create_container("busybox", "cat", stdin_open=True, environment={"FOO": "1"},
                                  ports=[80, (53, "udp")], name="lt-target", hostname="thost")
    try:
        api.start(target)
        ip = api.inspect_container(target)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        c = api.create_container("busybox", ["sh", "-c", "env; cat /etc/hosts"], name="lt-user",
                                 host_config=api.create_host_config(links={"lt-target": "my-db"}))
        try:
            assert api.inspect_container(c)["HostConfig"]["Links"] == ["/lt-target:/lt-user/my-db"]
            api.start(c)
            assert api.wait(c, timeout=30)["StatusCode"] == 0
            out = api.logs(c).decode().splitlines()
            for line in ("MY_DB_NAME=/lt-user/my-db", "MY_DB_ENV_FOO=1", f"MY_DB_PORT=udp://{ip}:53",
                         f"MY_DB_PORT_80_TCP=tcp://{ip}:80", f"MY_DB_PORT_80_TCP_ADDR={ip}",
                         "MY_DB_PORT_80_TCP_PORT=80", "MY_DB_PORT_80_TCP_PROTO=tcp",
                         f"MY_DB_PORT_53_UDP=udp://{ip}:53", f"{ip}\tmy-db thost lt-target"):
                assert line in out, (line, out)
            assert not any(line.startswith(("MY_DB_ENV_PATH", "MY_DB_ENV_HOME")) for line in out)
            # the parent forgets the link; the target is untouched
            api.remove_container("lt-user/my-db", link=True)
            assert api.inspect_container(c)["HostConfig"]["Links"] is None
            assert api.inspect_container(target)["State"]["Running"]
        finally:
            api.remove_container(c, force=True)
    finally:
        api.remove_container(target, force=True)


def test_link_refusals(daemon: TestDaemon, client: docker.DockerClient) -> None:
    status, body = daemon.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"Links": ["nowhere:x"]}})
    assert (status, body["message"]) == (400, "could not get container for nowhere: No such container: nowhere")
    stopped = client.api.create_container("busybox", "true", name="lt-stopped")
    c = client.api.create_container("busybox", "true", host_config=client.api.create_host_config(
        links={"lt-stopped": "s"}))
    try:
        status, body = daemon.api_json("POST", f"/containers/{c['Id']}/start")
        assert status == 500 and "Cannot link to a non running container" in body["message"]
        status, body = daemon.api_json("DELETE", "/containers/lt-stopped?link=1")
        # dockerd answers its own "Conflict" with a 500; dockyard with 409 (docs/architecture.md)
        conflict = 500 if isinstance(daemon, DockerdTarget) else 409
        assert (status, body["message"]) == (conflict, "Conflict, cannot remove the default link name of the "
                                                       "container")
        status, body = daemon.api_json("DELETE", "/containers/lt-nowhere?link=1")
        assert (status, body["message"]) == (404, "No such container: lt-nowhere")
    finally:
        client.api.remove_container(c, force=True)
        client.api.remove_container(stopped, force=True)


@pytest.mark.parametrize("cli", ["dockyard", "docker"])
def test_link_with_the_cli(daemon: TestDaemon, cli: str) -> None:
    run = daemon.cli if cli == "dockyard" else daemon.docker
    assert run("run", "-d", "--name", f"web-{cli}", "busybox", "sleep", "60").returncode == 0
    try:
        r = run("run", "--rm", "--link", f"web-{cli}:web", "busybox", "sh", "-c", "ping -c1 -W2 web >/dev/null && "
                "echo $WEB_NAME")
        assert (r.returncode, r.stdout) == (0, "/" + r.stdout.strip().lstrip("/") + "\n"), r.stderr
        assert r.stdout.strip().endswith("/web")
    finally:
        run("rm", "-f", f"web-{cli}")
