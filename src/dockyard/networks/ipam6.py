"""IPv6 address management for dual-stack networks (``--ipv6``) and link-local endpoint addresses.

Kept apart from ipam.py (IPv4, whose pools are typed as such) and, like it, pure logic: the
service passes in what is taken and stores what comes back. A network created with EnableIPv6
and no IPv6 pool gets a unique local /64 (RFC 4193: fd00::/8 plus 40 random bits), as current
dockerd does; addresses are handed out from the lowest free one, the gateway excepted.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.errors import Conflict, Forbidden, InvalidParameter
from dockyard.networks.ipam import OVERLAP_MSG

AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_v6(cidr_or_ip: str) -> bool:
    return ":" in cidr_or_ip


@dataclass(frozen=True)
class Pool6:
    subnet: ipaddress.IPv6Network
    gateway: ipaddress.IPv6Address
    ip_range: ipaddress.IPv6Network | None = None

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen


def make_pool6(subnet: str, gateway: str = "", ip_range: str = "") -> Pool6:
    """Validate a user's IPv6 IPAM config; the gateway defaults to the subnet's first address."""
    try:
        net = ipaddress.IPv6Network(subnet, strict=False)
    except ValueError as e:
        raise InvalidParameter(f"invalid subnet {subnet}: {e}") from None
    if net.prefixlen > 126:
        raise InvalidParameter(f"invalid subnet {subnet}: prefix too long (need at least 2 usable addresses)")
    rng = None
    if ip_range:
        try:
            rng = ipaddress.IPv6Network(ip_range, strict=False)
        except ValueError as e:
            raise InvalidParameter(f"invalid ip-range {ip_range}: {e}") from None
        if not rng.subnet_of(net):
            raise InvalidParameter(f"invalid pool request: sub-pool {ip_range} is not contained in {net}")
    if gateway:
        try:
            gw = ipaddress.IPv6Address(gateway)
        except ValueError:
            raise InvalidParameter(f"invalid gateway address {gateway}") from None
        if gw not in net:
            raise InvalidParameter(f"no matching subnet for gateway {gateway}")
    else:
        gw = net.network_address + 1
    return Pool6(net, gw, rng)


def unique_local_subnet(taken: Iterable[ipaddress.IPv6Network]) -> ipaddress.IPv6Network:
    """A random fdXX:XXXX:XXXX::/64 that overlaps none of ``taken``."""
    taken = list(taken)
    for _ in range(64):
        global_id = int.from_bytes(os.urandom(5), "big")
        net = ipaddress.IPv6Network(((0xFD << 120) | (global_id << 80), 64))
        if not any(net.overlaps(t) for t in taken):
            return net
    raise Forbidden("could not find an available, non-overlapping IPv6 address pool to assign to the network")


def check_no_overlap6(net: ipaddress.IPv6Network, others: Iterable[ipaddress.IPv6Network]) -> None:
    if any(net.overlaps(o) for o in others):
        raise Forbidden(OVERLAP_MSG)


def allocate6(pool: Pool6, used: Iterable[str], requested: str = "", network_label: str = "") -> str:
    """An IPv6 address for an endpoint: the requested one if free, else the lowest free one."""
    taken = {ipaddress.IPv6Address(u) for u in used if u} | {pool.subnet.network_address, pool.gateway}
    if requested:
        want = parse_v6(requested)
        if want not in pool.subnet:
            raise InvalidParameter(
                f"invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {requested}")
        if want in taken:
            raise Conflict("Address already in use")
        return str(want)
    span = pool.ip_range or pool.subnet
    host = span.network_address
    for _ in range(1 << 16):  # a /64 is never walked whole: the first free address is near the start
        if host not in span:
            break
        if host not in taken:
            return str(host)
        host += 1
    raise Conflict(f"no available IPv6 addresses on this network's address pools: {network_label}")


def parse_v6(addr: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(addr)
    except ValueError:
        raise InvalidParameter(f"invalid IPv6 address: {addr}") from None


def link_local_addresses(values: Iterable[str]) -> list[tuple[str, int]]:
    """IPAMConfig.LinkLocalIPs as (address, prefix length) to add; anything else is docker's 400."""
    out = []
    for v in values:
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            raise InvalidParameter(f"invalid link-local IP address: {v}") from None
        if not ip.is_link_local:
            raise InvalidParameter(f"invalid link-local IP address: {v}")
        out.append((str(ip), 16 if ip.version == 4 else 64))
    return out
