"""docker-compose (Debian's 1.29, driven through docker-py) runs a two-service project against the daemon unchanged.

The project: `web` (busybox httpd behind tini, a healthcheck, a named volume, env, labels, a port published on
127.0.0.1) and `client`, which waits for `web` to be healthy and fetches http://web/ by name over the project's
network. Each compose command's output is checked, and so is the state the daemon reports; `down -v` must leave
no container, network or volume of the project.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.daemon import TestDaemon

COMPOSE_FILE = """\
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo \\"hello from $$GREETING\\" > /www/index.html && echo web-ready
              && exec httpd -f -p 80 -h /www"]
    init: true
    environment:
      GREETING: compose
    labels:
      com.example.role: frontend
    ports:
      - "127.0.0.1:{port}:80"
    volumes:
      - data:/data
    networks: [appnet]
    healthcheck:
      test: ["CMD-SHELL", "test -f /www/index.html"]
      interval: 1s
      timeout: 2s
      retries: 3
  client:
    image: busybox:latest
    command: ["sh", "-c", "for i in $$(seq 1 100); do
              if printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc web 80 | grep -q 'hello from compose';
              then echo got-page; exit 0; fi; sleep 0.2; done; echo no-page; exit 1"]
    depends_on:
      web:
        condition: service_healthy
    networks: [appnet]
networks:
  appnet:
    labels:
      com.example.net: app
volumes:
  data: {{}}
"""


@pytest.fixture(scope="module")
def compose_bin() -> str:
    path = shutil.which("docker-compose")
    assert path, "docker-compose is not installed (scripts/setup.sh installs Debian's package)"
    return path


@pytest.fixture()
def project(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> Iterator[tuple[str, str, int]]:
    """(project name, compose file path, host port); whatever a failing test leaves is removed."""
    name = "dyc" + secrets.token_hex(3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE_FILE.format(port=port))
    yield name, str(path), port
    label = f"label=com.docker.compose.project={name}"
    for kind in ("container", "network", "volume"):
        ids = daemon.docker(kind, "ls", "-q", *(["-a"] if kind == "container" else []), "--filter", label)
        for ref in ids.stdout.split():
            daemon.docker(kind, "rm", *(["-f"] if kind == "container" else []), ref)


def _compose(daemon: TestDaemon, compose_bin: str, project: tuple[str, str, int], *args: str,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    name, path, _ = project
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    r = subprocess.run([compose_bin, "-H", daemon.host, "-f", path, "-p", name, *args], capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"docker-compose {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def _fetch(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def _ps_rows(out: str) -> dict[str, str]:
    """`docker-compose ps` table → {container name: the State column and what follows}."""
    rows = {}
    for line in out.splitlines()[2:]:
        if line.strip():
            name, _, rest = line.partition(" ")
            rows[name] = rest
    return rows


def _wait_healthy(daemon: TestDaemon, cid: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, info = daemon.api_json("GET", f"/containers/{cid}/json")
        assert status == 200
        if info["State"].get("Health", {}).get("Status") == "healthy" or time.monotonic() > deadline:
            return dict(info)
        time.sleep(0.2)


def _leftovers(daemon: TestDaemon, name: str) -> list[str]:
    label = f"label=com.docker.compose.project={name}"
    left = daemon.docker("ps", "-a", "-q", "--filter", label).stdout.split()
    left += [n for n in daemon.docker("network", "ls", "--format", "{{.Name}}").stdout.split() if name in n]
    left += [v for v in daemon.docker("volume", "ls", "-q").stdout.split() if name in v]
    return left


def test_compose_project_lifecycle(daemon: TestDaemon, compose_bin: str, project: tuple[str, str, int]) -> None:
    name, _, port = project
    up = _compose(daemon, compose_bin, project, "up", "-d")
    for line in (f'Creating network "{name}_appnet" with the default driver',
                 f'Creating volume "{name}_data" with default driver',
                 f"Creating {name}_web_1 ... done", f"Creating {name}_client_1 ... done"):
        assert line in up.stderr, up.stderr

    web = daemon.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}_web_1").stdout.strip()
    client = daemon.docker("ps", "-a", "-q", "--no-trunc", "--filter", f"name={name}_client_1").stdout.strip()
    assert web and client
    info = _wait_healthy(daemon, web)
    assert info["State"]["Health"]["Status"] == "healthy"
    labels = info["Config"]["Labels"]
    assert labels["com.example.role"] == "frontend"
    assert labels["com.docker.compose.project"] == name and labels["com.docker.compose.service"] == "web"
    assert "GREETING=compose" in info["Config"]["Env"]
    assert info["HostConfig"]["Init"] is True
    assert [(m["Type"], m["Name"], m["Destination"]) for m in info["Mounts"]] == [("volume", f"{name}_data",
                                                                                     "/data")]
    net = info["NetworkSettings"]["Networks"][f"{name}_appnet"]
    assert "web" in (net["Aliases"] or []) and net["IPAddress"]
    assert info["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert "hello from compose" in _fetch(port)

    status, cinfo = daemon.api_json("GET", f"/containers/{client}/json")
    deadline = time.monotonic() + 20
    while cinfo["State"]["Running"] and time.monotonic() < deadline:
        time.sleep(0.2)
        status, cinfo = daemon.api_json("GET", f"/containers/{client}/json")
    assert cinfo["State"]["Status"] == "exited" and cinfo["State"]["ExitCode"] == 0

    rows = _ps_rows(_compose(daemon, compose_bin, project, "ps").stdout)
    assert set(rows) == {f"{name}_web_1", f"{name}_client_1"}
    assert "Up (healthy)" in rows[f"{name}_web_1"] and f"127.0.0.1:{port}->80/tcp" in rows[f"{name}_web_1"]
    assert "Exit 0" in rows[f"{name}_client_1"]
    port_out = _compose(daemon, compose_bin, project, "port", "web", "80").stdout.strip()
    assert port_out == f"127.0.0.1:{port}"

    logs = _compose(daemon, compose_bin, project, "logs", "--no-color").stdout
    assert "web_1     | web-ready" in logs and "client_1  | got-page" in logs

    page = _compose(daemon, compose_bin, project, "exec", "-T", "web", "cat", "/www/index.html").stdout
    assert page == "hello from compose\n"
    _compose(daemon, compose_bin, project, "exec", "-T", "web", "sh", "-c", "echo kept > /data/f")

    stop = _compose(daemon, compose_bin, project, "stop")
    assert f"Stopping {name}_web_1 ... done" in stop.stderr
    rows = _ps_rows(_compose(daemon, compose_bin, project, "ps").stdout)
    assert "Exit" in rows[f"{name}_web_1"] and "Up" not in rows[f"{name}_web_1"]

    start = _compose(daemon, compose_bin, project, "start")
    assert "Starting web    ... done" in start.stderr and "Starting client ... done" in start.stderr
    assert _wait_healthy(daemon, web)["State"]["Health"]["Status"] == "healthy"
    assert "hello from compose" in _fetch(port)
    kept = _compose(daemon, compose_bin, project, "exec", "-T", "web", "cat", "/data/f").stdout
    assert kept == "kept\n"  # the named volume outlives the stop

    one_off = _compose(daemon, compose_bin, project, "run", "--rm", "-T", "--no-deps", "client",
                       "sh", "-c", "nslookup web >/dev/null && echo resolved").stdout
    assert one_off.strip().splitlines()[-1] == "resolved"

    _compose(daemon, compose_bin, project, "stop")
    again = _compose(daemon, compose_bin, project, "up", "-d")  # converge: reconnects, then starts the same ones
    assert f"Starting {name}_web_1 ... done" in again.stderr and "Creating" not in again.stderr
    assert _wait_healthy(daemon, web)["State"]["Health"]["Status"] == "healthy"
    assert "hello from compose" in _fetch(port)

    down = _compose(daemon, compose_bin, project, "down", "-v")
    for line in (f"Removing {name}_web_1    ... done", f"Removing {name}_client_1 ... done",
                 f"Removing network {name}_appnet", f"Removing volume {name}_data"):
        assert line in down.stderr, down.stderr
    assert _leftovers(daemon, name) == []
    assert _ps_rows(_compose(daemon, compose_bin, project, "ps").stdout) == {}


RECREATE_FILE = """\
services:
  keep:
    image: busybox:latest
    command: ["sh", "-c", "touch /anon/$$V; exec sleep 300"]
    init: true
    volumes:
      - /anon
    environment:
      V: "${V:-one}"
"""


def test_compose_recreate_keeps_anonymous_volume(daemon: TestDaemon, compose_bin: str,
                                                 project: tuple[str, str, int]) -> None:
    name, path, _ = project
    with open(path, "w") as f:
        f.write(RECREATE_FILE)
    _compose(daemon, compose_bin, project, "up", "-d")
    first = daemon.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}_keep_1").stdout.strip()
    os.environ["V"] = "two"
    try:
        again = _compose(daemon, compose_bin, project, "up", "-d")
    finally:
        del os.environ["V"]
    assert f"Recreating {name}_keep_1 ... done" in again.stderr
    second = daemon.docker("ps", "-q", "--no-trunc", "--filter", f"name={name}_keep_1").stdout.strip()
    assert second and second != first
    assert daemon.docker("ps", "-a", "-q", "--filter", f"id={first}").stdout.strip() == ""
    listing = _compose(daemon, compose_bin, project, "exec", "-T", "keep", "ls", "/anon").stdout.split()
    assert listing == ["one", "two"]  # compose carries the anonymous volume over to the new container
    carried = [m["Name"] for m in json.loads(daemon.docker("inspect", second).stdout)[0]["Mounts"]
               if m["Destination"] == "/anon"]
    _compose(daemon, compose_bin, project, "down", "-v")
    assert _leftovers(daemon, name) == []
    # compose re-mounted the anonymous volume by name, and `rm -v` keeps volumes mounted by name
    # (dockerd does the same), so the carried-over volume is the one left
    assert daemon.docker("volume", "ls", "-q").stdout.split() == carried
    assert daemon.docker("volume", "rm", *carried).returncode == 0
