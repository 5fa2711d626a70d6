"""Dual-stack user networks, link-local addresses and endpoint links, with real containers.

Every IPv6 subnet here is a unique local one (fd00::/8) derived from the test daemon's own IPv4
subnet, so it is unique per daemon and never leaves the host. Addresses are read inside the
containers (``ip -6 addr``) and traffic goes container to container (ping6, nc, nslookup).
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from e2ehelp import ok

from dockyard.networks.dns import QTYPE_AAAA, build_answer, for_qtype
from helpers.daemon import TestDaemon

pytestmark = pytest.mark.usefixtures("clean_after")


def execute(d: TestDaemon, name: str, *cmd: str) -> str:
    return ok(d, "exec", name, *cmd)


@pytest.fixture(scope="module")
def v6(d: TestDaemon) -> list[str]:
    """Five ULA /64s unique to this daemon (its IPv4 bip's octets are in the global ID)."""
    o = [int(x) for x in d.bip.split("/")[0].split(".")]
    return [f"fd{o[1]:02x}:{o[2]:02x}{i:02x}:d0c::/64" for i in range(1, 6)]


@pytest.fixture(scope="module")
def v4(d: TestDaemon) -> list[str]:
    base = d.bip.split(".")
    return [f"10.{base[1]}.{(int(base[2]) + 100 + i) % 256}.0/24" for i in range(1, 6)]


def inet6(d: TestDaemon, name: str) -> list[str]:
    """Global IPv6 addresses on the container's interfaces, as ``ip -6 addr`` shows them inside."""
    out = execute(d, name, "ip", "-6", "addr", "show", "scope", "global")
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("inet6")]


@pytest.mark.dockyard_only("docker 27's IPv6 (ULA default pool, gateways in IPAM config, its messages); dockerd 20.10 predates it")
def test_dual_stack_network_gives_containers_real_ipv6_addresses(d: TestDaemon, v4: list[str],
                                                                 v6: list[str]) -> None:
    sub6 = ipaddress.IPv6Network(v6[0])
    gw6 = str(sub6.network_address + 1)
    ok(d, "network", "create", "--ipv6", "--subnet", v4[0], "--subnet", str(sub6), "dual")
    net = json.loads(ok(d, "network", "inspect", "dual"))[0]
    assert net["EnableIPv6"] is True
    assert {"Subnet": str(sub6), "Gateway": gw6} in net["IPAM"]["Config"]
    fixed = str(sub6.network_address + 0xF00D)
    ok(d, "run", "-d", "--name", "six1", "--network", "dual", "--ip6", fixed, "busybox", "sleep", "300")
    ok(d, "run", "-d", "--name", "six2", "--network", "dual", "busybox", "sleep", "300")
    assert inet6(d, "six1") == [f"{fixed}/64"]
    s1 = json.loads(ok(d, "inspect", "six1"))[0]["NetworkSettings"]["Networks"]["dual"]
    assert s1["GlobalIPv6Address"] == fixed and s1["GlobalIPv6PrefixLen"] == 64 and s1["IPv6Gateway"] == gw6
    assert s1["IPAMConfig"] == {"IPv6Address": fixed}
    s2 = json.loads(ok(d, "inspect", "six2"))[0]["NetworkSettings"]["Networks"]["dual"]
    second = s2["GlobalIPv6Address"]
    assert ipaddress.IPv6Address(second) in sub6 and second not in (fixed, gw6)
    assert inet6(d, "six2") == [f"{second}/64"]
    routes = execute(d, "six2", "ip", "-6", "route")
    assert f"default via {gw6}" in routes
    # real traffic between the two over IPv6, and from the container to the bridge's gateway address
    execute(d, "six2", "ping6", "-c", "1", "-W", "3", fixed)
    execute(d, "six1", "ping6", "-c", "1", "-W", "3", gw6)
    members = json.loads(ok(d, "network", "inspect", "dual"))[0]["Containers"]
    assert sorted(c["IPv6Address"] for c in members.values()) == sorted([f"{fixed}/64", f"{second}/64"])
    # the embedded DNS answers AAAA with the IPv6 address and A with the IPv4 one
    out = execute(d, "six2", "nslookup", "-type=AAAA", "six1")
    assert fixed in out
    out = execute(d, "six2", "nslookup", "-type=A", "six1")
    assert s1["IPAddress"] in out and fixed not in out


def test_ipv6_subnet_without_enable_ipv6_is_kept_but_not_used(d: TestDaemon, v6: list[str]) -> None:
    """As dockerd 20.10: the IPv6 pool is listed, IPv4 comes from the defaults, the requested IPv6
    address is recorded in IPAMConfig and no IPv6 address is configured."""
    sub6 = ipaddress.IPv6Network(v6[1])
    ok(d, "network", "create", "--subnet", str(sub6), "halfsix")
    net = json.loads(ok(d, "network", "inspect", "halfsix"))[0]
    assert net["EnableIPv6"] is False
    subnets = [c["Subnet"] for c in net["IPAM"]["Config"]]
    assert str(sub6) in subnets and any(":" not in s for s in subnets)
    want = str(sub6.network_address + 0xF00D)
    ok(d, "run", "-d", "--name", "half", "--network", "halfsix", "--ip6", want, "busybox", "sleep", "300")
    s = json.loads(ok(d, "inspect", "half"))[0]["NetworkSettings"]["Networks"]["halfsix"]
    assert s["IPAMConfig"]["IPv6Address"] == want
    assert s["GlobalIPv6Address"] == "" and inet6(d, "half") == []


@pytest.mark.dockyard_only("docker 27's IPv6 (ULA default pool, gateways in IPAM config, its messages); dockerd 20.10 predates it")
def test_ipv6_refusals_change_nothing(d: TestDaemon, v4: list[str], v6: list[str]) -> None:
    sub6 = ipaddress.IPv6Network(v6[2])
    ok(d, "network", "create", "--ipv6", "--subnet", v4[2], "--subnet", str(sub6), "six-a")
    p = d.docker("network", "create", "--ipv6", "--subnet", v4[3], "--subnet", str(sub6), "six-b")
    assert p.returncode == 1 and "Pool overlaps with other one on this address space" in p.stderr
    assert d.docker("network", "inspect", "six-b").returncode == 1
    outside = str(ipaddress.IPv6Network(v6[3]).network_address + 5)
    p = d.docker("run", "-d", "--name", "bad6", "--network", "six-a", "--ip6", outside, "busybox", "sleep", "9")
    assert p.returncode != 0 and "no configured subnet or ip-range contain the IP address" in p.stderr
    # a network with no IPv6 subnet of the user's: a static IPv6 address is docker's 400
    ok(d, "network", "create", "plain4")
    p = d.docker("run", "-d", "--network", "plain4", "--ip6", outside, "busybox", "sleep", "9")
    assert p.returncode != 0 and "user specified IP address is supported only when connecting to networks " \
                                  "with user configured subnets" in p.stderr


@pytest.mark.dockyard_only("docker 27's IPv6 (ULA default pool, gateways in IPAM config, its messages); dockerd 20.10 predates it")
def test_ipv6_network_without_subnet_gets_a_unique_local_one(d: TestDaemon) -> None:
    ok(d, "network", "create", "--ipv6", "autosix")
    net = json.loads(ok(d, "network", "inspect", "autosix"))[0]
    six = [c for c in net["IPAM"]["Config"] if ":" in c["Subnet"]]
    assert len(six) == 1
    sub = ipaddress.IPv6Network(six[0]["Subnet"])
    assert sub.prefixlen == 64 and sub.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    ok(d, "run", "-d", "--name", "auto6", "--network", "autosix", "busybox", "sleep", "300")
    (addr,) = inet6(d, "auto6")
    assert ipaddress.IPv6Interface(addr).ip in sub


def test_default_bridge_stays_ipv4(d: TestDaemon) -> None:
    net = json.loads(ok(d, "network", "inspect", "bridge"))[0]
    assert net["EnableIPv6"] is False and all(":" not in c["Subnet"] for c in net["IPAM"]["Config"])
    ok(d, "run", "-d", "--name", "plain", "busybox", "sleep", "300")
    assert inet6(d, "plain") == []


@pytest.mark.dockyard_only("docker 27's IPv6 (ULA default pool, gateways in IPAM config, its messages); dockerd 20.10 predates it")
def test_link_local_ips_are_configured_and_reported(d: TestDaemon) -> None:
    c = d.client()
    ctr = c.api.create_container(
        "busybox", "sleep 300", name="llip", host_config=c.api.create_host_config(network_mode="bridge"),
        networking_config=c.api.create_networking_config(
            {"bridge": c.api.create_endpoint_config(link_local_ips=["169.254.8.8"])}))
    c.api.start(ctr)
    cfg = c.api.inspect_container(ctr)["NetworkSettings"]["Networks"]["bridge"]
    assert cfg["IPAMConfig"]["LinkLocalIPs"] == ["169.254.8.8"]
    assert "inet 169.254.8.8/16" in execute(d, "llip", "ip", "addr", "show", "eth0")
    ok(d, "network", "create", "llnet")
    p = d.docker("network", "connect", "--link-local-ip", "10.1.2.3", "llnet", "llip")
    assert p.returncode == 1 and "invalid link-local IP address: 10.1.2.3" in p.stderr
    assert "llnet" not in json.loads(ok(d, "inspect", "llip"))[0]["NetworkSettings"]["Networks"]


def test_endpoint_links_are_dns_aliases_on_user_networks(d: TestDaemon, v4: list[str]) -> None:
    """docker-py's test_create_with_links / test_connect_with_links: EndpointConfig.Links on a user
    network is reported in inspect and ``alias`` resolves to the target, for the linking container only."""
    c = d.client()
    ok(d, "network", "create", "--subnet", v4[4], "linknet")
    ctr = c.api.create_container(
        "busybox", "sleep 300", name="linker", host_config=c.api.create_host_config(network_mode="linknet"),
        networking_config=c.api.create_networking_config(
            {"linknet": c.api.create_endpoint_config(links=[("upstream", "bar")])}))
    c.api.start(ctr)
    settings = c.api.inspect_container(ctr)["NetworkSettings"]["Networks"]["linknet"]
    assert settings["Links"] == ["upstream:bar"]
    ok(d, "run", "-d", "--name", "upstream", "--network", "linknet", "busybox", "sleep", "300")
    ok(d, "run", "-d", "--name", "other", "--network", "linknet", "busybox", "sleep", "300")
    target = json.loads(ok(d, "inspect", "upstream"))[0]["NetworkSettings"]["Networks"]["linknet"]["IPAddress"]
    assert target in execute(d, "linker", "nslookup", "bar")
    assert d.docker("exec", "other", "nslookup", "bar").returncode != 0  # the alias is the linker's own
    # connect with --link, after a disconnect, as docker-py's test does
    ok(d, "network", "disconnect", "linknet", "other")
    ok(d, "network", "connect", "--link", "upstream:baz", "linknet", "other")
    links = json.loads(ok(d, "inspect", "other"))[0]["NetworkSettings"]["Networks"]["linknet"]["Links"]
    assert links == ["upstream:baz"]
    assert target in execute(d, "other", "nslookup", "baz")


def test_aaaa_answers_carry_only_ipv6_addresses() -> None:
    addrs = ["10.0.0.2", "fd00::2"]
    assert for_qtype(addrs, 1) == ["10.0.0.2"] and for_qtype(addrs, QTYPE_AAAA) == ["fd00::2"]
    assert for_qtype(addrs, 255) == addrs and for_qtype(addrs, 16) == []
    q = bytes.fromhex("1234010000010000000000000373697800001c0001")  # "six" AAAA
    ans = build_answer(q, ["fd00::2"])
    assert ans[-16:] == ipaddress.IPv6Address("fd00::2").packed
    assert ans[-26:-24] == (28).to_bytes(2, "big") and ans[-18:-16] == (16).to_bytes(2, "big")
