"""Bridges and veth pairs through netlink (pyroute2).

pyroute2 is slow to import, so it is imported on first use and one host-side
IPRoute is shared (under a lock) for the daemon's life. Namespace-side work uses
an IPRoute over a netlink socket created inside the target namespace.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from dockyard.networks import netns

if TYPE_CHECKING:
    from pyroute2 import IPRoute

IFNAMSIZ = 15


def _iproute(sock: socket.socket | None = None) -> IPRoute:
    from pyroute2 import IPRoute  # slow import, deferred on purpose

    logging.getLogger("pyroute2").setLevel(logging.WARNING)  # its debug output dumps every netlink message

    return IPRoute(use_socket=sock) if sock is not None else IPRoute()


def link_name(prefix: str, kind: str, key: str) -> str:
    """A kernel interface name "<prefix><kind><key…>" cut to the 15-character limit."""
    base = f"{prefix}{kind}"
    return base + key[: max(4, IFNAMSIZ - len(base))]


def _netlink_socket_in(path: str) -> socket.socket:
    return netns.run_in(path, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))


class Netlink:
    """Host-side link operations; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ipr: IPRoute | None = None

    @property
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = _iproute()
        return self._ipr

    def close(self) -> None:
        with self._lock:
            if self._ipr is not None:
                self._ipr.close()
                self._ipr = None

    def index(self, name: str) -> int | None:
        """Interface index; call with the lock held."""
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        with self._lock:
            return self.index(name) is not None

    def link_names(self) -> list[str]:
        with self._lock:
            return [str(link.get_attr("IFLA_IFNAME")) for link in self.ipr.get_links()]

    def routes(self) -> list[ipaddress.IPv4Network]:
        """Host IPv4 routes (main table), to keep new subnets away from them."""
        out = []
        with self._lock:
            for r in self.ipr.get_routes(family=socket.AF_INET, table=254):
                dst = r.get_attr("RTA_DST")
                if dst:
                    out.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        return out

    def ensure_bridge(self, name: str, gateway: str, prefixlen: int, mtu: int = 1500) -> None:
        """Create (or adopt after a restart) a bridge with the gateway address, up."""
        with self._lock:
            idx = self.index(name)
            if idx is None:
                self.ipr.link("add", ifname=name, kind="bridge")
                idx = self.index(name)
                assert idx is not None
            self.ipr.link("set", index=idx, mtu=mtu)
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in self.ipr.get_addr(index=idx, family=2)}
            for addr, plen in have - {(gateway, prefixlen)}:
                self.ipr.addr("del", index=idx, address=addr, prefixlen=plen)
            if (gateway, prefixlen) not in have:
                self.ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
            self.ipr.link("set", index=idx, state="up")

    def delete_link(self, name: str) -> None:
        """Delete an interface (a veth's peer goes with it); idempotent."""
        with self._lock:
            idx = self.index(name)
            if idx is not None:
                try:
                    self.ipr.link("del", index=idx)
                except Exception as e:  # raced with the kernel removing it
                    if "No such device" not in str(e):
                        raise

    def bridge_members(self, bridge: str) -> list[str]:
        with self._lock:
            idx = self.index(bridge)
            if idx is None:
                return []
            return [str(x.get_attr("IFLA_IFNAME")) for x in self.ipr.get_links() if x.get_attr("IFLA_MASTER") == idx]

    def attach(self, bridge: str, host_veth: str, ns_path: str, ifname: str, ip: str, prefixlen: int,
               gateway: str | None, mac: str, mtu: int = 1500) -> None:
        """A veth pair: host end on the bridge, the other end ``ifname`` inside the namespace, configured."""
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            with self._lock:
                br = self.index(bridge)
                if br is None:
                    raise RuntimeError(f"bridge {bridge} does not exist")
                self.ipr.link("add", ifname=host_veth, kind="veth", mtu=mtu,
                              peer={"ifname": ifname, "net_ns_fd": fd, "mtu": mtu})
                hidx = self.index(host_veth)
                assert hidx is not None
                self.ipr.link("set", index=hidx, master=br, state="up")
        except BaseException:
            self.delete_link(host_veth)
            raise
        finally:
            os.close(fd)
        try:
            configure_inside(ns_path, ifname, ip, prefixlen, gateway, mac)
        except BaseException:
            self.delete_link(host_veth)
            raise


def configure_inside(ns_path: str, ifname: str, ip: str, prefixlen: int, gateway: str | None, mac: str) -> None:
    """Address, MAC, link up and (unless internal) the default route of a namespace's interface."""
    ipr = _iproute(_netlink_socket_in(ns_path))
    try:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.link("set", index=idx, address=mac)
        ipr.addr("add", index=idx, address=ip, prefixlen=prefixlen)
        ipr.link("set", index=idx, state="up")
        if gateway:
            routes = ipr.get_routes(family=socket.AF_INET, table=254, dst_len=0)
            if not routes:
                ipr.route("add", dst="0.0.0.0/0", gateway=gateway)
    finally:
        ipr.close()


def loopback_up(ns_path: str) -> None:
    ipr = _iproute(_netlink_socket_in(ns_path))
    try:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    finally:
        ipr.close()


def remove_inside(ns_path: str, ifname: str) -> None:
    """Delete an interface inside a namespace (disconnect from a running container)."""
    ipr = _iproute(_netlink_socket_in(ns_path))
    try:
        found = ipr.link_lookup(ifname=ifname)
        if found:
            ipr.link("del", index=found[0])
    finally:
        ipr.close()


def interfaces_inside(ns_path: str) -> list[dict[str, Any]]:
    """Names and IPv4 addresses inside a namespace (tests and reconcile)."""
    ipr = _iproute(_netlink_socket_in(ns_path))
    try:
        out = []
        for link in ipr.get_links():
            idx = link["index"]
            addrs = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)]
            out.append({"name": link.get_attr("IFLA_IFNAME"), "addrs": addrs})
        return out
    finally:
        ipr.close()
