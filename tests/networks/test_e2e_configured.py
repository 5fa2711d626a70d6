"""Networks of containers that do not run: what create records, connect/disconnect before a start or while
stopped, what inspect shows then, and docker-compose 1.x (which disconnects and reconnects before the start).
Also the host-mode /etc/hostname. Only loopback and container addresses are contacted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from e2ehelp import ok

from helpers.daemon import TestDaemon

BUSYBOX = "busybox:latest"


def networks_of(d: TestDaemon, name: str) -> dict[str, Any]:
    return dict(json.loads(ok(d, "inspect", "-f", "{{json .NetworkSettings.Networks}}", name)))


@pytest.fixture(scope="module")
def subnet(d: TestDaemon) -> str:
    base = d.bip.split(".")
    return f"10.{base[1]}.{(int(base[2]) + 7) % 256}.0/24"


def test_create_records_networks_and_disconnect_before_start(d: TestDaemon, subnet: str) -> None:
    ok(d, "network", "create", "--subnet", subnet, "cfgnet")
    try:
        ok(d, "create", "--name", "cfgc", "--network", "cfgnet", "--network-alias", "first", BUSYBOX, "sleep", "300")
        nets = networks_of(d, "cfgc")
        assert list(nets) == ["cfgnet"]  # listed before any start, like docker, without operational data
        assert nets["cfgnet"]["Aliases"] == ["first"]
        assert (nets["cfgnet"]["IPAddress"], nets["cfgnet"]["EndpointID"], nets["cfgnet"]["Gateway"]) == ("",) * 3
        listed = ok(d, "ps", "-a", "--filter", "network=cfgnet", "--format", "{{.Names}}")
        assert listed.split() == ["cfgc"]

        ok(d, "network", "disconnect", "cfgnet", "cfgc")
        assert networks_of(d, "cfgc") == {}
        again = d.docker("network", "disconnect", "cfgnet", "cfgc")
        assert again.returncode == 1
        assert "is not connected to the network cfgnet" in again.stderr

        ok(d, "network", "connect", "--alias", "second", "cfgnet", "cfgc")
        nets = networks_of(d, "cfgc")  # shown at once, before the start
        # before API 1.44 docker adds the short container ID to the aliases (1.44 moved it to DNSNames)
        short = [ok(d, "inspect", "-f", "{{.Id}}", "cfgc").strip()[:12]] if d.api_version < "1.44" else []
        assert list(nets) == ["cfgnet"] and nets["cfgnet"]["Aliases"] == ["second", *short]
        ok(d, "network", "connect", "cfgnet", "cfgc")  # already configured: docker keeps it and succeeds
        assert networks_of(d, "cfgc")["cfgnet"]["Aliases"] == ["second", *short]

        ok(d, "start", "cfgc")
        ip = networks_of(d, "cfgc")["cfgnet"]["IPAddress"]
        assert ip.startswith(subnet.rsplit(".", 1)[0] + ".")
        assert ip in ok(d, "exec", "cfgc", "nslookup", "second")
        assert "first" not in (networks_of(d, "cfgc")["cfgnet"]["Aliases"] or [])
    finally:
        d.docker("rm", "-f", "cfgc")
        d.docker("network", "rm", "cfgnet")


def test_connect_and_disconnect_while_stopped_show_at_once_and_apply_at_start(d: TestDaemon, subnet: str) -> None:
    ok(d, "network", "create", "--subnet", subnet, "stopnet")
    try:
        ok(d, "run", "-d", "--name", "stopc", BUSYBOX, "sleep", "300")
        ok(d, "stop", "-t", "0", "stopc")
        ok(d, "network", "connect", "stopnet", "stopc")
        nets = networks_of(d, "stopc")
        assert set(nets) == {"bridge", "stopnet"} and nets["stopnet"]["IPAddress"] == ""
        ok(d, "start", "stopc")
        nets = networks_of(d, "stopc")
        assert nets["bridge"]["IPAddress"] and nets["stopnet"]["IPAddress"]
        addrs = ok(d, "exec", "stopc", "ip", "-o", "-4", "addr")
        assert nets["bridge"]["IPAddress"] in addrs and nets["stopnet"]["IPAddress"] in addrs

        ok(d, "stop", "-t", "0", "stopc")
        ok(d, "network", "disconnect", "bridge", "stopc")
        assert set(networks_of(d, "stopc")) == {"stopnet"}
        ok(d, "start", "stopc")
        nets = networks_of(d, "stopc")
        assert set(nets) == {"stopnet"}
        assert ok(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "stopc").strip() == ""
        assert "eth1" not in ok(d, "exec", "stopc", "ip", "-o", "link")
    finally:
        d.docker("rm", "-f", "stopc")
        d.docker("network", "rm", "stopnet")


def test_missing_network_is_found_at_start_like_docker(d: TestDaemon, subnet: str) -> None:
    ok(d, "create", "--name", "latec", "--network", "latenet", BUSYBOX, "sleep", "300")
    try:
        assert list(networks_of(d, "latec")) == ["latenet"]
        p = d.docker("start", "latec")
        assert p.returncode == 1 and "network latenet not found" in p.stderr
        ok(d, "network", "create", "--subnet", subnet, "latenet")
        ok(d, "start", "latec")
        assert networks_of(d, "latec")["latenet"]["IPAddress"]
    finally:
        d.docker("rm", "-f", "latec")
        d.docker("network", "rm", "latenet")


def test_host_network_hostname_file_holds_the_chosen_name(d: TestDaemon) -> None:
    picked = ok(d, "run", "--rm", "--network", "host", "--hostname", "picked", BUSYBOX,
                "sh", "-c", "hostname; cat /etc/hostname")
    assert picked.split() == ["picked", "picked"]
    default = ok(d, "run", "--rm", "--network", "host", BUSYBOX, "cat", "/etc/hostname")
    assert default.strip() == socket.gethostname()


COMPOSE_FILE = """\
services:
  app:
    image: busybox:latest
    command: ["sleep", "300"]
    networks:
      front:
        aliases: [appalias, other-name]
      back: {}
networks:
  front: {}
  back: {}
"""


@pytest.fixture()
def project(d: TestDaemon, tmp_path: Any) -> Iterator[tuple[str, str]]:
    path = shutil.which("docker-compose")
    assert path, "docker-compose is not installed (scripts/setup.sh installs Debian's package)"
    name = "dyn" + secrets.token_hex(3)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    yield name, str(tmp_path / "docker-compose.yml")
    label = f"label=com.docker.compose.project={name}"
    for kind in ("container", "network"):
        ids = d.docker(kind, "ls", "-q", *(["-a"] if kind == "container" else []), "--filter", label)
        for ref in ids.stdout.split():
            d.docker(kind, "rm", *(["-f"] if kind == "container" else []), ref)


def _compose(d: TestDaemon, project: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    name, path = project
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    r = subprocess.run(["docker-compose", "-H", d.host, "-f", path, "-p", name, *args], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, f"docker-compose {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def test_compose_up_with_network_aliases(d: TestDaemon, project: tuple[str, str]) -> None:
    name, _ = project
    _compose(d, project, "up", "-d")
    cid = ok(d, "ps", "-q", "--no-trunc", "--filter", f"name={name}_app_1").strip()
    assert cid
    nets = networks_of(d, cid)
    assert set(nets) == {f"{name}_front", f"{name}_back"}
    front = nets[f"{name}_front"]
    assert {"app", "appalias", "other-name"} <= set(front["Aliases"] or []) and front["IPAddress"]
    assert nets[f"{name}_back"]["IPAddress"]
    assert front["IPAddress"] in ok(d, "exec", cid, "nslookup", "appalias")
    _compose(d, project, "down")
    assert not ok(d, "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={name}").split()
