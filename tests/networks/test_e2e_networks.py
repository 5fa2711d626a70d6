"""Networking with real containers through the daemon, driven by the docker CLI and docker-py.

HTTP-like traffic goes through busybox nc (busybox-static wget segfaults in a bare rootfs).
Only loopback and container addresses are contacted; the one forwarded DNS name goes to a
fake resolver the test runs on a loopback address.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
from e2ehelp import SERVER, fetch, ok
from nethelp import free_port, loopback_dns_socket

from dockyard.networks import netns
from dockyard.networks.dns import build_answer, parse_question
from helpers.daemon import TestDaemon, links_with_prefix, wait_for


def run_out(d: TestDaemon, *args: str) -> tuple[int, str]:
    """``docker run`` to completion: (exit code, output). Detached + wait + logs, then removed."""
    cid = ok(d, "run", "-d", *args).strip()
    try:
        code = int(ok(d, "wait", cid).strip())
        logs = d.docker("logs", cid)
        return code, logs.stdout + logs.stderr
    finally:
        d.docker("rm", "-f", cid)


def run_ok(d: TestDaemon, *args: str) -> str:
    code, out = run_out(d, *args)
    assert code == 0, f"run {' '.join(args)} exited {code}: {out}"
    return out


def ip_on(d: TestDaemon, name: str, network: str) -> str:
    nets = json.loads(ok(d, "inspect", "-f", "{{json .NetworkSettings.Networks}}", name))
    return str(nets[network]["IPAddress"])

pytestmark = pytest.mark.usefixtures("clean_after")


@pytest.fixture(scope="module")
def subnets(d: TestDaemon) -> list[str]:
    base = d.bip.split(".")
    return [f"10.{base[1]}.{(int(base[2]) + i) % 256}.0/24" for i in range(1, 6)]


def test_names_and_aliases_resolve_on_a_user_network(d: TestDaemon, subnets: list[str]) -> None:
    ok(d, "network", "create", "--subnet", subnets[0], "app")
    ok(d, "run", "-d", "--name", "db1", "--network", "app", "--network-alias", "db", busybox(), "sleep", "300")
    ok(d, "run", "-d", "--name", "db2", "--network", "app", "--network-alias", "db", busybox(), "sleep", "300")
    ip1, ip2 = ip_on(d, "db1", "app"), ip_on(d, "db2", "app")
    out = run_ok(d, "--network", "app", busybox(), "nslookup", "db1")
    assert ip1 in out
    out = run_ok(d, "--network", "app", busybox(), "nslookup", "db")
    assert ip1 in out and ip2 in out
    conf = run_ok(d, "--network", "app", busybox(), "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in conf
    ok(d, "rm", "-f", "db1", "db2")
    ok(d, "network", "rm", "app")


def test_default_bridge_has_no_name_resolution(d: TestDaemon) -> None:
    ok(d, "run", "-d", "--name", "plainweb", busybox(), "sleep", "300")
    conf = run_ok(d, busybox(), "cat", "/etc/resolv.conf", "/etc/hosts")
    assert "127.0.0.11" not in conf and "plainweb" not in conf
    code, _ = run_out(d, "--dns", "127.0.0.1", busybox(), "nslookup", "plainweb")
    assert code != 0
    ok(d, "rm", "-f", "plainweb")


@pytest.mark.dockyard_only("forwarding to a host-loopback --dns from the host's side is newer docker's; dockerd 20.10's resolver cannot reach it")
def test_forwarding_to_loopback_resolver_from_host_side(d: TestDaemon, subnets: list[str]) -> None:
    ok(d, "network", "create", "--subnet", subnets[1], "fwd")
    fake, fake_ip = loopback_dns_socket()
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                msg, peer = fake.recvfrom(512)
            except OSError:
                return
            q = parse_question(msg)
            if q:
                seen.append(q[2])
                fake.sendto(build_answer(msg, ["203.0.113.5"] if q[3] == 1 else []), peer)
    threading.Thread(target=serve, daemon=True).start()
    try:
        out = run_ok(d, "--network", "fwd", "--dns", fake_ip, busybox(), "nslookup",
                 "outside.example")
        assert "203.0.113.5" in out
        assert any(s.startswith("outside.example") for s in seen)
    finally:
        fake.close()
        d.docker("network", "rm", "fwd")


def test_published_ports_localhost_other_container_udp_and_P(d: TestDaemon) -> None:
    port = free_port()
    ok(d, "run", "-d", "--name", "srv", "-p", f"127.0.0.1:{port}:80", busybox(), "sh", "-c", SERVER)
    assert fetch("127.0.0.1", port) == b"hello\n"
    ip = ok(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv").strip()
    out = run_ok(d, busybox(), "nc", "-w", "3", ip, "80")
    assert out == "hello\n"
    assert ok(d, "port", "srv").strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert d.cli("port", "srv").stdout == ok(d, "port", "srv")
    assert d.cli("port", "srv", "80/tcp").stdout == f"127.0.0.1:{port}\n"
    miss = d.cli("port", "srv", "81")
    # the port as the user gave it, as the docker CLI prints it
    assert miss.returncode == 1 and miss.stderr == "Error: No public port '81' published for srv\n"
    assert d.docker("port", "srv", "81").stderr == miss.stderr
    # UDP: busybox nc has no UDP, so the listener is a socket opened inside the container's namespace
    uport = free_port("udp")
    ok(d, "run", "-d", "--name", "udp", "-p", f"{uport}:9999/udp", busybox(), "sleep", "300")
    pid = ok(d, "inspect", "-f", "{{.State.Pid}}", "udp").strip()

    def bind_udp() -> socket.socket:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 9999))
        return u
    listener = netns.run_in(f"/proc/{pid}/ns/net", bind_udp)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"over-udp", ("127.0.0.1", uport))
        listener.settimeout(5)
        data, peer = listener.recvfrom(100)
        assert data == b"over-udp"
        listener.sendto(b"back", peer)
        s.settimeout(5)
        assert s.recv(100) == b"back"
        s.close()
    finally:
        listener.close()
    # -P with exposed ports
    ok(d, "run", "-d", "--name", "pub", "--expose", "80", "-P", busybox(), "sh", "-c", SERVER)
    line = ok(d, "port", "pub", "80")
    hp = int(line.strip().rsplit(":", 1)[1])
    assert fetch("127.0.0.1", hp) == b"hello\n"
    ok(d, "rm", "-f", "srv", "udp", "pub")


def test_port_conflict_does_not_start_and_leaves_nothing(d: TestDaemon) -> None:
    port = free_port()
    ok(d, "run", "-d", "--name", "first", "-p", f"{port}:80", busybox(), "sleep", "300")
    before = links_with_prefix(d.resource_prefix)
    p = d.docker("run", "-d", "--name", "second", "-p", f"{port}:80", busybox(), "sleep", "300")
    assert p.returncode != 0
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in p.stderr
    assert ok(d, "inspect", "-f", "{{.State.Running}}", "second").strip() == "false"
    assert links_with_prefix(d.resource_prefix) == before
    ok(d, "rm", "-f", "first", "second")


def test_isolation_and_connect_disconnect_running(d: TestDaemon, subnets: list[str]) -> None:
    ok(d, "network", "create", "--subnet", subnets[2], "left")
    ok(d, "network", "create", "--subnet", subnets[3], "right")
    ok(d, "run", "-d", "--name", "lweb", "--network", "left", busybox(), "sh", "-c", SERVER)
    ok(d, "run", "-d", "--name", "rcli", "--network", "right", busybox(), "sleep", "300")
    lip = ip_on(d, "lweb", "left")
    p = d.docker("exec", "rcli", "nc", "-w", "2", lip, "80")
    if d.reference:  # the host reason: the reference must leave the firewall alone, so it has no isolation
        assert "--iptables=false" in d.argv()
    else:
        assert "hello" not in p.stdout
    ok(d, "network", "connect", "--alias", "bridged", "left", "rcli")
    assert "eth1" in ok(d, "exec", "rcli", "ip", "-o", "addr")
    assert ok(d, "exec", "rcli", "nc", "-w", "3", "lweb", "80") == "hello\n"
    insp = json.loads(ok(d, "network", "inspect", "left"))[0]
    assert {c["Name"] for c in insp["Containers"].values()} == {"lweb", "rcli"}
    p = d.docker("network", "rm", "left")
    assert p.returncode == 1 and "has active endpoints" in p.stderr
    ok(d, "network", "disconnect", "left", "rcli")
    assert "eth1" not in ok(d, "exec", "rcli", "ip", "-o", "addr")
    ok(d, "rm", "-f", "lweb", "rcli")
    ok(d, "network", "rm", "left", "right")


def test_host_none_and_container_modes(d: TestDaemon) -> None:
    host_out = run_ok(d, "--network", "host", busybox(), "sh", "-c", "ip -o link; cat /etc/hostname")
    assert f": {d.bridge}:" in host_out  # the host's interfaces, our bridge among them
    assert host_out.rstrip().endswith(socket.gethostname())
    none_out = run_ok(d, "--network", "none", busybox(), "ip", "-o", "link")
    assert [ln.split(":")[1].strip() for ln in none_out.splitlines()] == ["lo"]
    ok(d, "run", "-d", "--name", "owner", busybox(), "sleep", "300")
    ip = ok(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "owner").strip()
    shared = run_ok(d, "--network", "container:owner", busybox(), "ip", "-o", "addr")
    assert ip in shared
    ok(d, "rm", "-f", "owner")


def test_dns_and_host_options_in_files(d: TestDaemon) -> None:
    out = run_ok(d, "--dns", "192.0.2.1", "--dns-search", "corp.test", "--dns-option", "ndots:2",
             "--add-host", "foo:192.0.2.5", "--add-host", "gw:host-gateway", "--hostname", "h1",
             busybox(), "cat", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname")
    # dockerd 20.10 writes search before nameserver; newer docker (and dockyard) nameservers first
    assert ("search corp.test\nnameserver 192.0.2.1\noptions ndots:2\n" if d.reference
            else "nameserver 192.0.2.1\nsearch corp.test\noptions ndots:2\n") in out
    gw = d.bip.split("/")[0]
    assert "192.0.2.5\tfoo" in out and f"{gw}\tgw" in out and out.rstrip().endswith("h1")


def test_docker_py_networks(d: TestDaemon, subnets: list[str]) -> None:
    import docker

    client: Any = d.client()
    try:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnets[4])])
        net = client.networks.create("pynet", driver="bridge", ipam=ipam, labels={"k": "v"})
        assert [n.name for n in client.networks.list(filters={"label": "k=v"})] == ["pynet"]
        port = free_port()
        c = client.containers.run(busybox(), ["sh", "-c", SERVER], detach=True, name="pyweb",
                                  network="pynet", ports={"80/tcp": ("127.0.0.1", port)})
        assert fetch("127.0.0.1", port) == b"hello\n"
        net.reload()
        assert c.id in net.attrs["Containers"]
        c.remove(force=True)
        net.remove()
        client.networks.create("pyprune", labels={"prune": "me"})
        assert client.networks.prune(filters={"label": "prune=me"})["NetworksDeleted"] == ["pyprune"]
    finally:
        client.close()


def busybox() -> str:
    return "busybox:latest"


def test_cleanup_leaves_no_container_links(d: TestDaemon) -> None:
    wait_for(lambda: not [n for n in links_with_prefix(d.resource_prefix)], timeout=5)


def test_dockyard_cli_matches_docker_cli(d: TestDaemon, subnets: list[str]) -> None:
    ok(d, "network", "create", "--subnet", subnets[4], "--label", "who=cli", "clinet")
    for args in (["network", "ls"], ["network", "ls", "-q"], ["network", "ls", "--no-trunc"],
                 ["network", "ls", "--filter", "label=who=cli", "--format", "{{.Name}} {{.Driver}}"],
                 ["network", "inspect", "clinet"]):
        mine = d.cli(*args)
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout == ok(d, *args), args
    gone = d.cli("network", "rm", "clinet", "nosuchnet")
    assert gone.returncode == 1 and gone.stdout == "clinet\n"
    assert "network nosuchnet not found" in gone.stderr


def test_docker_py_connect_disconnect_and_events(d: TestDaemon, subnets: list[str]) -> None:
    client: Any = d.client()
    since = int(time.time()) - 1
    try:
        net = client.networks.create("pyconn", ipam=_pool(subnets[1]))
        c = client.containers.run(busybox(), ["sleep", "300"], detach=True, name="pyc")
        net.connect(c, aliases=["pyalias"], ipv4_address=subnets[1][:-4] + "77")
        c.reload()
        assert c.attrs["NetworkSettings"]["Networks"]["pyconn"]["IPAddress"] == subnets[1][:-4] + "77"
        code, out = c.exec_run(["nslookup", "pyalias"])
        assert code == 0 and subnets[1][:-4] + "77" in out.decode()
        net.disconnect(c)
        c.reload()
        assert "pyconn" not in c.attrs["NetworkSettings"]["Networks"]
        c.remove(force=True)
        net.remove()
        until = int(time.time()) + 1
        events = list(client.events(since=since, until=until, decode=True, filters={"type": "network"}))
        actions = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in events]
        assert ("create", "pyconn") in actions and ("connect", "pyconn") in actions
        assert ("disconnect", "pyconn") in actions and ("destroy", "pyconn") in actions
    finally:
        client.close()


def _pool(subnet: str) -> Any:
    import docker

    return docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
