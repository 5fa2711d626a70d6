"""Published ports on dual-stack networks, and the default bridge's IPv6 from daemon.json, with real containers.

As dockerd with ``ip6tables``: ``-p`` without a host address publishes on 0.0.0.0 and on [::] with the same
host port, inspect/``port``/``ps`` list both bindings, ip6tables DNATs the IPv6 side to the container's IPv6
address, and ``[::1]`` (which the kernel cannot DNAT) is relayed by the daemon. Traffic is loopback only:
``[::1]``, 127.0.0.1 and the host's own address on the network's bridge.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import tempfile
import time
from urllib.parse import quote

import pytest
from e2ehelp import SERVER, fetch, ok

from helpers.daemon import TestDaemon, _remove_iptables, ip6tables_lines
from helpers.served import running

pytestmark = [pytest.mark.usefixtures("clean_after"), pytest.mark.dockyard_only(
    "docker 27's dual-stack publishing (IPv6 only where the network has it, ip6tables DNAT, its messages); dockerd "
    "20.10 binds [::] through its userland proxy on every network, and the reference runs with --ip6tables=false")]


def refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as c:
            c.settimeout(2)
            return c.recv(100) == b""
    except OSError:
        return True


def ula(d: TestDaemon, i: int) -> str:
    """A unique local /64 of this daemon's own (its IPv4 bip's octets are in the global ID)."""
    o = [int(x) for x in d.bip.split("/")[0].split(".")]
    return f"fd{o[1]:02x}:{o[2]:02x}{i:02x}:b0b::/64"


def v4(d: TestDaemon, i: int) -> str:
    base = d.bip.split(".")
    return f"10.{base[1]}.{(int(base[2]) + 150 + i) % 256}.0/24"


def dual(d: TestDaemon, name: str, i: int) -> ipaddress.IPv6Network:
    sub6 = ipaddress.IPv6Network(ula(d, i))
    ok(d, "network", "create", "--ipv6", "--subnet", v4(d, i), "--subnet", str(sub6), name)
    return sub6


def rules6(d: TestDaemon, cid: str) -> list[str]:
    return [ln for ln in ip6tables_lines(f"DOCKYARD-{d.resource_prefix}") if f"c{cid[:12]}" in ln]


def test_default_binding_publishes_on_both_families(d: TestDaemon) -> None:
    sub6 = dual(d, "pub6", 1)
    cid = ok(d, "run", "-d", "--name", "web6", "--network", "pub6", "-p", "80", "busybox", "sh", "-c",
             SERVER).strip()
    c = json.loads(ok(d, "inspect", "web6"))[0]
    binds = c["NetworkSettings"]["Ports"]["80/tcp"]
    assert [b["HostIp"] for b in binds] == ["0.0.0.0", "::"]
    port = binds[0]["HostPort"]
    assert binds[1]["HostPort"] == port  # one host port for both families, as dockerd gives
    ip6 = c["NetworkSettings"]["Networks"]["pub6"]["GlobalIPv6Address"]
    assert ipaddress.IPv6Address(ip6) in sub6
    assert ok(d, "port", "web6") == f"80/tcp -> 0.0.0.0:{port}\n80/tcp -> [::]:{port}\n"
    assert ok(d, "port", "web6", "80") == f"0.0.0.0:{port}\n[::]:{port}\n"
    assert f"0.0.0.0:{port}->80/tcp, [::]:{port}->80/tcp" in ok(d, "ps", "--format", "{{.Ports}}", "-f",
                                                                 "name=web6")
    listed = json.loads(d.api("GET", "/containers/json?filters=" + quote(json.dumps({"name": ["web6"]})))[2])[0]
    assert {"IP": "::", "PrivatePort": 80, "PublicPort": int(port), "Type": "tcp"} in listed["Ports"]
    # the IPv6 side in ip6tables: DNAT to the container's IPv6 address, never of ::1
    nat = [ln for ln in rules6(d, cid) if "DNAT" in ln and "--to-destination" in ln]
    assert nat and all(f"[{ip6}]:80" in ln and "! -d ::1/128" in ln for ln in nat), nat
    # real traffic: [::1] (relayed), 127.0.0.1, and the host's own IPv6 address on the bridge (DNAT)
    gw6 = str(sub6.network_address + 1)
    assert fetch("::1", int(port)) == b"hello\n"
    assert fetch("127.0.0.1", int(port)) == b"hello\n"
    assert fetch(gw6, int(port)) == b"hello\n"
    # stop: the rules and the relay go; start: back on a (new) port; rm: nothing left
    ok(d, "stop", "-t", "1", "web6")
    assert rules6(d, cid) == []
    assert refused("::1", int(port))
    ok(d, "start", "web6")
    binds = json.loads(ok(d, "inspect", "web6"))[0]["NetworkSettings"]["Ports"]["80/tcp"]
    port2 = int(binds[1]["HostPort"])
    assert fetch("::1", port2) == b"hello\n"
    assert rules6(d, cid)
    ok(d, "rm", "-f", "web6")
    assert rules6(d, cid) == []
    assert refused("::1", port2)


def test_explicit_host_addresses_choose_the_family(d: TestDaemon) -> None:
    dual(d, "pick6", 2)
    ok(d, "run", "-d", "--name", "only6", "--network", "pick6", "-p", "[::1]::80", "-p", "127.0.0.1::81",
       "busybox", "sh", "-c", SERVER)
    ports = json.loads(ok(d, "inspect", "only6"))[0]["NetworkSettings"]["Ports"]
    assert [b["HostIp"] for b in ports["80/tcp"]] == ["::1"]
    assert [b["HostIp"] for b in ports["81/tcp"]] == ["127.0.0.1"]
    assert fetch("::1", int(ports["80/tcp"][0]["HostPort"])) == b"hello\n"


def test_ipv4_only_network_publishes_ipv4_only(d: TestDaemon) -> None:
    ok(d, "network", "create", "--subnet", v4(d, 3), "four")
    cid = ok(d, "run", "-d", "--name", "web4", "--network", "four", "-p", "80", "busybox", "sh", "-c",
             SERVER).strip()
    binds = json.loads(ok(d, "inspect", "web4"))[0]["NetworkSettings"]["Ports"]["80/tcp"]
    assert [b["HostIp"] for b in binds] == ["0.0.0.0"]
    assert rules6(d, cid) == []
    assert fetch("127.0.0.1", int(binds[0]["HostPort"])) == b"hello\n"


def test_fixed_ipv6_port_taken_is_refused_and_nothing_is_held(d: TestDaemon) -> None:
    dual(d, "busy6", 4)
    holder = socket.socket(socket.AF_INET6)
    holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    holder.bind(("::", 0))
    port = holder.getsockname()[1]
    try:
        p = d.docker("run", "-d", "--name", "clash6", "--network", "busy6", "-p", f"{port}:80", "busybox",
                     "sleep", "30")
        assert p.returncode == 125
        assert f"Bind for [::]:{port} failed: port is already allocated" in p.stderr
    finally:
        holder.close()
    # the IPv4 side was not kept: the same port publishes now
    ok(d, "rm", "-f", "clash6")
    ok(d, "run", "-d", "--name", "again6", "--network", "busy6", "-p", f"{port}:80", "busybox", "sh", "-c", SERVER)
    assert fetch("::1", port) == b"hello\n"


def test_update_publish_add_on_dual_stack(d: TestDaemon) -> None:
    dual(d, "upd6", 5)
    ok(d, "run", "-d", "--name", "upd", "--network", "upd6", "busybox", "sh", "-c", SERVER)
    p = d.cli("container", "update", "--publish-add", "80", "upd")  # dockyard's own flag (docker has none)
    assert p.returncode == 0, p.stderr
    binds = json.loads(ok(d, "inspect", "upd"))[0]["NetworkSettings"]["Ports"]["80/tcp"]
    assert [b["HostIp"] for b in binds] == ["0.0.0.0", "::"]
    assert fetch("::1", int(binds[1]["HostPort"])) == b"hello\n"


# -- the periodic firewall check keeps the IPv6 side too ---------------------------------------------------


def _daemon(conf: dict[str, object]) -> TestDaemon:
    tmp = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    cfg = os.path.join(tmp, "daemon.json")
    with open(cfg, "w") as f:
        json.dump(conf, f)
    return TestDaemon(["--config-file", cfg], tmp=tmp)


def test_ip6tables_rules_flushed_are_restored(busybox_tar: str) -> None:
    with running(busybox_tar, _daemon({"firewall-check-interval": 1})) as (dd,):
        dual(dd, "heal6", 6)
        cid = ok(dd, "run", "-d", "--name", "h6", "--network", "heal6", "-p", "80", "busybox", "sh", "-c",
                 SERVER).strip()
        before = sorted(ip6tables_lines(f"DOCKYARD-{dd.resource_prefix}"))
        assert rules6(dd, cid)
        _remove_iptables(f"DOCKYARD-{dd.resource_prefix}", "ip6tables")
        deadline = time.monotonic() + 10
        while sorted(ip6tables_lines(f"DOCKYARD-{dd.resource_prefix}")) != before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(ip6tables_lines(f"DOCKYARD-{dd.resource_prefix}")) == before
        assert "firewall (ip6tables)" in dd.log_tail(400)
        ok(dd, "rm", "-f", "h6")
        ok(dd, "network", "rm", "heal6")


# -- the default bridge: IPv4 only unless daemon.json asks ------------------------------------------------


def test_default_bridge_is_ipv4_only_by_default(d: TestDaemon) -> None:
    net = json.loads(ok(d, "network", "inspect", "bridge"))[0]
    assert net["EnableIPv6"] is False
    assert all(":" not in c["Subnet"] for c in net["IPAM"]["Config"])
    ok(d, "run", "-d", "--name", "plain", "-p", "80", "busybox", "sleep", "60")
    c = json.loads(ok(d, "inspect", "plain"))[0]["NetworkSettings"]
    assert c["GlobalIPv6Address"] == "" and c["Networks"]["bridge"]["GlobalIPv6Address"] == ""
    assert [b["HostIp"] for b in c["Ports"]["80/tcp"]] == ["0.0.0.0"]


def test_default_bridge_ipv6_from_daemon_json(busybox_tar: str) -> None:
    sub6 = ipaddress.IPv6Network(((0xFD << 120) | (int.from_bytes(os.urandom(5), "big") << 80), 64))
    with running(busybox_tar, _daemon({"ipv6": True, "fixed-cidr-v6": str(sub6)})) as (dd,):
        net = json.loads(ok(dd, "network", "inspect", "bridge"))[0]
        assert net["EnableIPv6"] is True
        assert {"Subnet": str(sub6), "Gateway": str(sub6.network_address + 1)} in net["IPAM"]["Config"]
        ok(dd, "run", "-d", "--name", "b6", "-p", "80", "busybox", "sh", "-c", SERVER)
        c = json.loads(ok(dd, "inspect", "b6"))[0]["NetworkSettings"]
        assert ipaddress.IPv6Address(c["GlobalIPv6Address"]) in sub6
        assert c["GlobalIPv6PrefixLen"] == 64 and c["IPv6Gateway"] == str(sub6.network_address + 1)
        inside = ok(dd, "exec", "b6", "ip", "-6", "addr", "show", "scope", "global")
        assert f"{c['GlobalIPv6Address']}/64" in inside
        binds = c["Ports"]["80/tcp"]
        assert [b["HostIp"] for b in binds] == ["0.0.0.0", "::"]
        assert fetch("::1", int(binds[1]["HostPort"])) == b"hello\n"
        ok(dd, "rm", "-f", "b6")
    # a daemon.json asking only fixed-cidr-v6 (no "ipv6": true) leaves the bridge IPv4 only, as dockerd
    with running(busybox_tar, _daemon({"fixed-cidr-v6": str(sub6)})) as (dd,):
        net = json.loads(ok(dd, "network", "inspect", "bridge"))[0]
        assert net["EnableIPv6"] is False


def test_bad_fixed_cidr_v6_stops_the_daemon() -> None:
    dd = _daemon({"ipv6": True, "fixed-cidr-v6": "10.0.0.0/8"})
    try:
        p = subprocess.run(dd.argv(), capture_output=True, text=True, timeout=60)
        assert p.returncode != 0
        assert "invalid fixed-cidr-v6" in p.stderr
    finally:
        dd.remove_tmp()


def test_default_bridge_ipv6_without_fixed_cidr_gets_a_kept_unique_local_subnet(busybox_tar: str) -> None:
    with running(busybox_tar, _daemon({"ipv6": True})) as (dd,):
        net = json.loads(ok(dd, "network", "inspect", "bridge"))[0]
        assert net["EnableIPv6"] is True
        six = [c for c in net["IPAM"]["Config"] if ":" in c["Subnet"]]
        assert len(six) == 1
        sub6 = ipaddress.IPv6Network(six[0]["Subnet"])
        assert sub6.prefixlen == 64 and sub6.subnet_of(ipaddress.IPv6Network("fd00::/8"))
        dd.restart()
        again = json.loads(ok(dd, "network", "inspect", "bridge"))[0]
        assert [c for c in again["IPAM"]["Config"] if ":" in c["Subnet"]] == six  # the same /64 after a restart
