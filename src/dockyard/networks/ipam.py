"""IPv4 address management: subnets for networks, addresses for endpoints.

Pure logic (no netlink, no database) so it is unit-tested on its own; the
service passes in what is taken (other networks, host routes, allocated
addresses) and stores what comes back. Wording of errors follows dockerd's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dockyard.errors import Conflict, Forbidden, InvalidParameter

OVERLAP_MSG = "invalid pool request: Pool overlaps with other one on this address space"


def default_pools() -> Iterator[ipaddress.IPv4Network]:
    """dockerd's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s."""
    for second in range(17, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


@dataclass(frozen=True)
class Pool:
    """A network's address space: where endpoints get their addresses from."""

    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ip_range: ipaddress.IPv4Network | None = None

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen


def make_pool(subnet: str, gateway: str = "", ip_range: str = "") -> Pool:
    """Validate user IPAM config; the gateway defaults to the first host address."""
    try:
        net = ipaddress.IPv4Network(subnet, strict=False)
    except ValueError as e:
        raise InvalidParameter(f"invalid subnet {subnet}: {e}") from None
    if net.prefixlen > 30:
        raise InvalidParameter(f"invalid subnet {subnet}: prefix too long (need at least 2 usable addresses)")
    rng = None
    if ip_range:
        try:
            rng = ipaddress.IPv4Network(ip_range, strict=False)
        except ValueError as e:
            raise InvalidParameter(f"invalid ip-range {ip_range}: {e}") from None
        if not rng.subnet_of(net):
            raise InvalidParameter(f"invalid pool request: sub-pool {ip_range} is not contained in {net}")
    if gateway:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise InvalidParameter(f"invalid gateway address {gateway}") from None
        if gw not in net:
            raise InvalidParameter(f"no matching subnet for gateway {gateway}")
    else:
        gw = net.network_address + 1
    return Pool(net, gw, rng)


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


def _reserved(pool: Pool) -> set[ipaddress.IPv4Address]:
    return {pool.subnet.network_address, pool.subnet.broadcast_address, pool.gateway}


def check_aux_addresses(pool: Pool, aux: dict[str, str]) -> None:
    """docker's checks of IPAM AuxiliaryAddresses: each one an address inside the subnet."""
    for name, addr in aux.items():
        try:
            ip = ipaddress.IPv4Address(addr)
        except ValueError:
            raise InvalidParameter(f"invalid auxiliary address {name}: {addr}") from None
        if ip not in pool.subnet:  # dockerd answers this one with a 403
            raise Forbidden(f"auxiliary address {name} {addr} is not in subnet {pool.subnet}")


def allocate(pool: Pool, used: Iterable[str], requested: str = "", network_label: str = "") -> str:
    """An address for an endpoint: the requested one if free, else the lowest free one in the range."""
    taken = {ipaddress.IPv4Address(u) for u in used} | _reserved(pool)
    if requested:
        try:
            want = ipaddress.IPv4Address(requested)
        except ValueError:
            raise InvalidParameter(f"invalid IPv4 address: {requested}") from None
        if want not in pool.subnet:  # docker accepts static addresses outside --ip-range
            raise InvalidParameter(
                f"invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {requested}")
        if want in taken:
            raise Conflict("Address already in use")
        return str(want)
    span = pool.ip_range or pool.subnet
    for host in span:  # the subnet's network/broadcast/gateway are in ``taken``, a range's ends are usable
        if host not in taken:
            return str(host)
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {network_label}")


def mac_for(ip: str) -> str:
    """docker's MAC scheme: 02:42 followed by the four IPv4 octets."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)
