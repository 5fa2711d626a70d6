"""Address management: subnets for networks, addresses for endpoints.

Pure logic (no netlink, no database) so it is unit-tested on its own; the
service passes in what is taken (other networks, host routes, allocated
addresses) and stores what comes back. Wording of errors follows dockerd's.
One pool shape and one allocator serve both families (typed per family by
their entry points); ipam6.py holds only what is IPv6's own (unique local
subnets, link-local addresses).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from dockyard.errors import Conflict, Forbidden, InvalidParameter

OVERLAP_MSG = "invalid pool request: Pool overlaps with other one on this address space"


def default_pools() -> Iterator[ipaddress.IPv4Network]:
    """dockerd's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s."""
    for second in range(17, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


NetT = TypeVar("NetT", ipaddress.IPv4Network, ipaddress.IPv6Network)
AddrT = TypeVar("AddrT", ipaddress.IPv4Address, ipaddress.IPv6Address)


@dataclass(frozen=True)
class AddressPool(Generic[NetT, AddrT]):
    """A network's address space (one family): where endpoints get their addresses from."""

    subnet: NetT
    gateway: AddrT
    ip_range: NetT | None = None

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen


Pool = AddressPool[ipaddress.IPv4Network, ipaddress.IPv4Address]
Pool6 = AddressPool[ipaddress.IPv6Network, ipaddress.IPv6Address]


def _checked_pool(subnet: str, gateway: str, ip_range: str, net_type: Callable[..., NetT],
                  addr_type: Callable[[str], AddrT]) -> AddressPool[NetT, AddrT]:
    """Validate user IPAM config of one family; the gateway defaults to the subnet's first host address."""
    try:
        net = net_type(subnet, strict=False)
    except ValueError as e:
        raise InvalidParameter(f"invalid subnet {subnet}: {e}") from None
    if net.prefixlen > net.max_prefixlen - 2:
        raise InvalidParameter(f"invalid subnet {subnet}: prefix too long (need at least 2 usable addresses)")
    rng = None
    if ip_range:
        try:
            rng = net_type(ip_range, strict=False)
        except ValueError as e:
            raise InvalidParameter(f"invalid ip-range {ip_range}: {e}") from None
        if not rng.subnet_of(net):
            raise InvalidParameter(f"invalid pool request: sub-pool {ip_range} is not contained in {net}")
    if gateway:
        try:
            gw = addr_type(gateway)
        except ValueError:
            raise InvalidParameter(f"invalid gateway address {gateway}") from None
        if gw not in net:
            raise InvalidParameter(f"no matching subnet for gateway {gateway}")
    else:
        gw = addr_type(str(net.network_address + 1))
    return AddressPool(net, gw, rng)


def make_pool(subnet: str, gateway: str = "", ip_range: str = "") -> Pool:
    """An IPv4 pool from the user's IPAM config."""
    return _checked_pool(subnet, gateway, ip_range, ipaddress.IPv4Network, ipaddress.IPv4Address)


def make_pool6(subnet: str, gateway: str = "", ip_range: str = "") -> Pool6:
    """An IPv6 pool from the user's IPAM config (a dual-stack network's second subnet)."""
    return _checked_pool(subnet, gateway, ip_range, ipaddress.IPv6Network, ipaddress.IPv6Address)


def overlaps(net: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Network]) -> bool:
    return any(net.overlaps(t) for t in taken)


def check_no_overlap(net: ipaddress.IPv4Network, networks: Iterable[ipaddress.IPv4Network],
                     routes: Iterable[ipaddress.IPv4Network]) -> None:
    """Refuse a user subnet that collides with another network or a host route (not the default one)."""
    if overlaps(net, networks):
        raise Forbidden(OVERLAP_MSG)
    if overlaps(net, (r for r in routes if r.prefixlen > 0)):
        raise Forbidden(OVERLAP_MSG)


def choose_subnet(networks: Iterable[ipaddress.IPv4Network], routes: Iterable[ipaddress.IPv4Network],
                  candidates: Iterable[ipaddress.IPv4Network] | None = None) -> ipaddress.IPv4Network:
    """The first default pool free of every network and host route."""
    taken = list(networks) + [r for r in routes if r.prefixlen > 0]
    for cand in candidates if candidates is not None else default_pools():
        if not overlaps(cand, taken):
            return cand
    raise Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults "
                    "to assign to the network")




def check_aux_addresses(pool: Pool, aux: dict[str, str]) -> None:
    """docker's checks of IPAM AuxiliaryAddresses: each one an address inside the subnet."""
    for name, addr in aux.items():
        try:
            ip = ipaddress.IPv4Address(addr)
        except ValueError:
            raise InvalidParameter(f"invalid auxiliary address {name}: {addr}") from None
        if ip not in pool.subnet:  # dockerd answers this one with a 403
            raise Forbidden(f"auxiliary address {name} {addr} is not in subnet {pool.subnet}")


def _allocate(pool: AddressPool[NetT, AddrT], used: Iterable[str], requested: str, network_label: str,
              addr_type: Callable[[str], AddrT], reserved: set[AddrT], family: str, limit: int | None = None) -> str:
    """An address for an endpoint: the requested one if free, else the lowest free one in the range.

    ``limit`` bounds the walk (IPv6: the first free address is near the start, a /64 is never walked whole)."""
    taken = {addr_type(u) for u in used if u} | reserved
    if requested:
        try:
            want = addr_type(requested)
        except ValueError:
            raise InvalidParameter(f"invalid {family} address: {requested}") from None
        if want not in pool.subnet:  # docker accepts static addresses outside --ip-range
            raise InvalidParameter(
                f"invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {requested}")
        if want in taken:
            raise Conflict("Address already in use")
        return str(want)
    span = pool.ip_range or pool.subnet
    host = span.network_address
    for _ in range(min(span.num_addresses, limit or span.num_addresses)):  # the reserved ones are in ``taken``
        if host not in taken:
            return str(host)
        host += 1
    raise Conflict(f"no available {family} addresses on this network's address pools: {network_label}")


def allocate(pool: Pool, used: Iterable[str], requested: str = "", network_label: str = "") -> str:
    """An IPv4 address: network, broadcast and gateway are never given out (a range's ends are)."""
    reserved = {pool.subnet.network_address, pool.subnet.broadcast_address, pool.gateway}
    return _allocate(pool, used, requested, network_label, ipaddress.IPv4Address, reserved, "IPv4")


def allocate6(pool: Pool6, used: Iterable[str], requested: str = "", network_label: str = "") -> str:
    """An IPv6 address: the subnet-router anycast (the network address) and the gateway are never given out."""
    reserved = {pool.subnet.network_address, pool.gateway}
    return _allocate(pool, used, requested, network_label, ipaddress.IPv6Address, reserved, "IPv6", 1 << 16)


def mac_for(ip: str) -> str:
    """docker's MAC scheme: 02:42 followed by the four IPv4 octets."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)
