"""Bridges and veth pairs through netlink.

Daemon-wide work (bridges, routes, listings) goes through pyroute2: it is slow to
import, so it is imported on first use and one host-side IPRoute is shared (under a
lock). The per-container hot path (veth pair, address, route, delete) uses the small
``rtnl`` client instead, over one shared host socket and a socket opened inside the
container's namespace.

Deleting a veth costs the kernel tens of milliseconds (it waits for RCU grace periods),
so a container's release hands its host-side veth to a background reaper: the release
returns at once, and the address stays out of IPAM's hands until the link is gone.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from dockyard.networks import netns, rtnl

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
        self._rt: rtnl.RtSocket | None = None
        self._reap_cv = threading.Condition()
        self._reap_queue: deque[tuple[str, str, str]] = deque()  # (host veth, network id, address)
        self._reaping: tuple[str, str, str] | None = None
        self._reaper: threading.Thread | None = None

    @property
    def rt(self) -> rtnl.RtSocket:
        """The shared host-namespace rtnetlink socket (thread-safe)."""
        if self._rt is None:
            with self._lock:
                if self._rt is None:
                    self._rt = rtnl.RtSocket()
        return self._rt

    @property
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = _iproute()
        return self._ipr

    def close(self) -> None:
        self.drain()
        with self._reap_cv:
            reaper, self._reaper = self._reaper, None
            self._reap_cv.notify_all()
        if reaper is not None:
            reaper.join(5)
        with self._lock:
            if self._ipr is not None:
                self._ipr.close()
                self._ipr = None
            if self._rt is not None:
                self._rt.close()
                self._rt = None

    # -- background deletion of released veths ------------------------------------------------

    def delete_link_later(self, name: str, network_id: str = "", address: str = "") -> None:
        """Queue a released host veth for deletion; ``address`` stays reserved on ``network_id``
        (see ``cooling``) until the link is gone so a new container never shares the wire with it."""
        with self._reap_cv:
            self._reap_queue.append((name, network_id, address))
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_loop, name="veth-reaper", daemon=True)
                self._reaper.start()
            self._reap_cv.notify_all()

    def cooling(self, network_id: str) -> set[str]:
        """Addresses on ``network_id`` whose old veth is still being deleted."""
        with self._reap_cv:
            items = list(self._reap_queue) + ([self._reaping] if self._reaping else [])
        return {addr for _name, net, addr in items if net == network_id and addr}

    def drain(self) -> None:
        """Wait until every queued veth is deleted."""
        with self._reap_cv:
            while (self._reap_queue or self._reaping) and self._reaper is not None:
                self._reap_cv.wait(1.0)

    def _reap_loop(self) -> None:
        me = threading.current_thread()
        try:
            rt = rtnl.RtSocket()  # its own socket: the shared one would hold up prepares for the whole delete
            try:
                self._reap_with(rt, me)
            finally:
                rt.close()
        except Exception:  # noqa: BLE001 - never leave drain() waiting on a dead thread
            logging.getLogger("dockyard.networks").warning("veth reaper stopped", exc_info=True)
            with self._reap_cv:
                if self._reaper is me:
                    self._reaper = None
                self._reap_cv.notify_all()

    def _reap_with(self, rt: rtnl.RtSocket, me: threading.Thread) -> None:
        with self._reap_cv:
            while self._reaper is me:
                if not self._reap_queue:
                    self._reap_cv.wait()
                    continue
                self._reaping = self._reap_queue.popleft()
                name = self._reaping[0]
                self._reap_cv.release()
                try:
                    rt.delete_link(name)
                except Exception:  # noqa: BLE001 - keep reaping; startup reconcile removes what is left
                    logging.getLogger("dockyard.networks").warning("deleting %s failed", name, exc_info=True)
                finally:
                    self._reap_cv.acquire()
                    self._reaping = None
                    self._reap_cv.notify_all()

    def index(self, name: str) -> int | None:
        """Interface index; call with the lock held."""
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        with self._lock:
            return self.index(name) is not None

    def link_names(self) -> list[str]:
        """Every host interface, once queued deletions have finished (so listings read our writes)."""
        self.drain()
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

    def ensure_bridge_v6(self, name: str, gateway6: str, prefixlen6: int) -> None:
        """The IPv6 gateway address on a dual-stack network's bridge (IPv6 enabled on it, no DAD wait)."""
        _set_sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0")
        with self._lock:
            idx = self.index(name)
            if idx is None:
                raise RuntimeError(f"bridge {name} does not exist")
        self.rt.add_address(idx, gateway6, prefixlen6)

    def delete_link(self, name: str) -> None:
        """Delete an interface (a veth's peer goes with it); idempotent."""
        self.rt.delete_link(name)

    def bridge_members(self, bridge: str) -> list[str]:
        with self._lock:
            idx = self.index(bridge)
            if idx is None:
                return []
            return [str(x.get_attr("IFLA_IFNAME")) for x in self.ipr.get_links() if x.get_attr("IFLA_MASTER") == idx]

    def attach(self, bridge: str, host_veth: str, ns_path: str, ifname: str, ip: str, prefixlen: int,
               gateway: str | None, mac: str, mtu: int = 1500, ns_rt: rtnl.RtSocket | None = None,
               extra: tuple[tuple[str, int, str | None], ...] = ()) -> None:
        """A veth pair: host end up on the bridge, the other end ``ifname`` inside the namespace,
        addressed, up, with the default route unless ``gateway`` is None. ``ns_rt`` is a netlink
        socket already open inside the namespace (one is opened here otherwise). ``extra`` are further
        (address, prefix length, gateway or None): the IPv6 address and link-local ones."""
        br = self.rt.link_index(bridge)
        if br is None:
            raise RuntimeError(f"bridge {bridge} does not exist")
        fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.rt.add_veth(host_veth, br, mtu, ifname, fd, mac)
        finally:
            os.close(fd)
        try:
            if any(":" in addr for addr, _p, _g in extra):
                netns.run_in(ns_path, lambda: _set_sysctl(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "0"))
            if ns_rt is not None:
                ns_rt.configure(ifname, ip, prefixlen, gateway, extra)
            else:
                with inside(ns_path) as rt:
                    rt.configure(ifname, ip, prefixlen, gateway, extra)
        except BaseException:
            self.delete_link(host_veth)
            raise


def _set_sysctl(path: str, value: str) -> None:
    """Write a sysctl when the kernel has it (an IPv6-less kernel has no ipv6 tree: nothing to enable)."""
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        pass


def inside(ns_path: str) -> rtnl.RtSocket:
    """An rtnetlink socket inside the namespace at ``ns_path`` (close it, or use ``with``)."""
    return rtnl.RtSocket(netns.run_in(ns_path, rtnl.open_socket))


def configure_inside(ns_path: str, ifname: str, ip: str, prefixlen: int, gateway: str | None, mac: str) -> None:
    """Address, link up and (unless internal) the default route of a namespace's interface.
    ``mac`` is set when the veth is created (kept for callers that pass it)."""
    with inside(ns_path) as rt:
        rt.set_up(rtnl.LOOPBACK_IFINDEX)
        rt.configure(ifname, ip, prefixlen, gateway)


def loopback_up(ns_path: str) -> None:
    with inside(ns_path) as rt:
        rt.set_up(rtnl.LOOPBACK_IFINDEX)


def remove_inside(ns_path: str, ifname: str) -> None:
    """Delete an interface inside a namespace (disconnect from a running container)."""
    with inside(ns_path) as rt:
        rt.delete_link(ifname)


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
