"""What is IPv6's own in address management: unique local subnets and link-local endpoint addresses.

Pools and allocation are ipam.py's (one shape for both families; re-exported here as ``Pool6``,
``make_pool6`` and ``allocate6`` for the dual-stack code). A network created with EnableIPv6 and no
IPv6 pool gets a unique local /64 (RFC 4193: fd00::/8 plus 40 random bits), as current dockerd does.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable

from dockyard.errors import Forbidden, InvalidParameter
from dockyard.networks.ipam import OVERLAP_MSG, Pool6, allocate6, make_pool6

__all__ = ["Pool6", "allocate6", "make_pool6", "is_v6", "unique_local_subnet", "check_no_overlap6", "parse_v6",
           "link_local_addresses"]

AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_v6(cidr_or_ip: str) -> bool:
    return ":" in cidr_or_ip


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
