"""IPAM: pools, allocation, static addresses, exhaustion, overlap refusal."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.errors import Conflict, Forbidden, InvalidParameter
from dockyard.networks import ipam, ipam6


def net(s: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(s)


def test_pool_defaults_gateway_to_first_host() -> None:
    p = ipam.make_pool("10.5.0.0/16")
    assert str(p.gateway) == "10.5.0.1" and p.prefixlen == 16 and p.ip_range is None


def test_pool_validation() -> None:
    with pytest.raises(InvalidParameter):
        ipam.make_pool("10.5.0.0/33")
    with pytest.raises(InvalidParameter, match="no matching subnet for gateway"):
        ipam.make_pool("10.5.0.0/24", gateway="10.6.0.1")
    with pytest.raises(InvalidParameter, match="not contained"):
        ipam.make_pool("10.5.0.0/24", ip_range="10.5.1.0/28")


def test_allocation_skips_network_gateway_broadcast_and_used() -> None:
    p = ipam.make_pool("10.5.0.0/29")  # .1 gateway, .7 broadcast
    got = []
    for _ in range(5):
        got.append(ipam.allocate(p, got))
    assert got == ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
    with pytest.raises(Conflict, match="no available IPv4 addresses on this network's address pools: n1"):
        ipam.allocate(p, got, network_label="n1")


def test_allocation_in_ip_range_and_released_address_reused() -> None:
    p = ipam.make_pool("10.5.0.0/24", ip_range="10.5.0.128/30")
    assert ipam.allocate(p, []) == "10.5.0.128"
    assert ipam.allocate(p, ["10.5.0.128"]) == "10.5.0.129"
    assert ipam.allocate(p, ["10.5.0.129"]) == "10.5.0.128"


def test_static_address() -> None:
    p = ipam.make_pool("10.5.0.0/24", gateway="10.5.0.254")
    assert ipam.allocate(p, [], "10.5.0.1") == "10.5.0.1"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate(p, ["10.5.0.9"], "10.5.0.9")
    with pytest.raises(Conflict):
        ipam.allocate(p, [], "10.5.0.254")
    with pytest.raises(InvalidParameter, match="no configured subnet or ip-range contain the IP address 10.9.0.1"):
        ipam.allocate(p, [], "10.9.0.1")
    with pytest.raises(InvalidParameter):
        ipam.allocate(p, [], "not-an-ip")


def test_overlap_refused_with_networks_and_routes_but_not_default_route() -> None:
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        ipam.check_no_overlap(net("10.1.0.0/16"), [net("10.1.5.0/24")], [])
    with pytest.raises(Forbidden, match="Pool overlaps"):
        ipam.check_no_overlap(net("192.0.2.0/25"), [], [net("192.0.2.0/24")])
    ipam.check_no_overlap(net("10.2.0.0/16"), [net("10.1.0.0/16")], [net("0.0.0.0/0")])


def test_choose_subnet_skips_taken_pools() -> None:
    assert ipam.choose_subnet([], []) == net("172.17.0.0/16")
    taken = [net("172.17.0.0/16"), net("172.18.0.0/16")]
    assert ipam.choose_subnet(taken, [net("172.19.3.0/24")]) == net("172.20.0.0/16")
    every = list(ipam.default_pools())
    with pytest.raises(Forbidden, match="could not find an available"):
        ipam.choose_subnet(every, [])


def test_mac_follows_docker_scheme() -> None:
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_ipv6_pools_share_the_ipv4_shape_and_checks() -> None:
    p = ipam6.make_pool6("fd00:1:2::/64")
    assert str(p.gateway) == "fd00:1:2::1" and p.prefixlen == 64 and p.ip_range is None
    assert isinstance(p, ipam.AddressPool) and isinstance(ipam.make_pool("10.5.0.0/24"), ipam.AddressPool)
    with pytest.raises(InvalidParameter, match="prefix too long"):
        ipam6.make_pool6("fd00::/127")
    with pytest.raises(InvalidParameter, match="no matching subnet for gateway"):
        ipam6.make_pool6("fd00:1::/64", gateway="fd00:2::1")
    with pytest.raises(InvalidParameter, match="not contained"):
        ipam6.make_pool6("fd00:1::/64", ip_range="fd00:2::/80")
    with pytest.raises(InvalidParameter, match="invalid gateway address"):
        ipam6.make_pool6("fd00:1::/64", gateway="10.0.0.1")


def test_ipv6_allocation_lowest_free_static_and_refusals() -> None:
    p = ipam6.make_pool6("fd00:1::/64")
    assert ipam6.allocate6(p, []) == "fd00:1::2"  # the subnet-router address and the gateway are never given
    assert ipam6.allocate6(p, ["fd00:1::2", ""]) == "fd00:1::3"
    assert ipam6.allocate6(p, [], "fd00:1::f00d") == "fd00:1::f00d"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam6.allocate6(p, ["fd00:1::f00d"], "fd00:1::f00d")
    with pytest.raises(InvalidParameter, match="no configured subnet or ip-range contain the IP address"):
        ipam6.allocate6(p, [], "fd00:2::5")
    with pytest.raises(InvalidParameter, match="invalid IPv6 address: nope"):
        ipam6.allocate6(p, [], "nope")
    small = ipam6.make_pool6("fd00:1::/126")  # ::0 anycast, ::1 gateway, ::2 and ::3 usable
    got = [ipam6.allocate6(small, []), ipam6.allocate6(small, ["fd00:1::2"])]
    assert got == ["fd00:1::2", "fd00:1::3"]
    with pytest.raises(Conflict, match="no available IPv6 addresses on this network's address pools: n6"):
        ipam6.allocate6(small, got, network_label="n6")
    ranged = ipam6.make_pool6("fd00:1::/64", ip_range="fd00:1::100/120")
    assert ipam6.allocate6(ranged, []) == "fd00:1::100"
