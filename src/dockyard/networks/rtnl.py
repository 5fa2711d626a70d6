"""A minimal rtnetlink client for the per-container hot path (veth, address, route, delete).

pyroute2 covers everything but costs milliseconds per call in Python message building
and parsing; a container start needs only a handful of fixed messages, so they are packed
here with ``struct`` and sent on a plain NETLINK_ROUTE socket. A socket belongs to the
network namespace it was created in, which is how namespace-side work is addressed.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLMSG_ERROR = 2

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
NLA_F_NESTED = 0x8000

IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_GATEWAY = 5
RTA_OIF = 4

IFF_UP = 0x1
LOOPBACK_IFINDEX = 1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
IFA_F_NODAD = 0x02
RTN_UNICAST = 1

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_NLHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid


class NetlinkError(OSError):
    """A request the kernel refused; ``errno`` is the kernel's error code."""


def _attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def _name(kind: int, name: str) -> bytes:
    return _attr(kind, name.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def open_socket() -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    return s


class RtSocket:
    """Request/acknowledge over one netlink socket; thread-safe (one request at a time)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock if sock is not None else open_socket()
        self._seq = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RtSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes, *, ok: tuple[int, ...] = ()) -> bytes:
        """Send one request and wait for its answer; returns the first reply payload (b"" for an ack).

        Kernel errors whose errno is in ``ok`` are swallowed (e.g. EEXIST, ENODEV for idempotence).
        """
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            self.sock.send(_NLHDR.pack(_NLHDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
                           + body)
            reply = b""
            while True:
                data = self.sock.recv(65536)
                pos = 0
                while pos + _NLHDR.size <= len(data):
                    length, rtype, _fl, rseq, _pid = _NLHDR.unpack_from(data, pos)
                    if length < _NLHDR.size:
                        break
                    payload = data[pos + _NLHDR.size: pos + length]
                    pos += (length + 3) & ~3
                    if rseq != seq:
                        continue
                    if rtype == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", payload)
                        if code == 0 or -code in ok:
                            return reply
                        raise NetlinkError(-code, os.strerror(-code))
                    reply = reply or payload

    # -- links ----------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """The ifindex of ``name`` in this socket's namespace, or None."""
        try:
            payload = self.request(RTM_GETLINK, 0, _ifinfo() + _name(IFLA_IFNAME, name))
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return _IFINFO.unpack_from(payload)[2] if payload else None

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, _ifinfo(index, IFF_UP, IFF_UP))

    def set_master(self, index: int, master: int) -> None:
        self.request(RTM_NEWLINK, 0, _ifinfo(index) + _u32(IFLA_MASTER, master))

    def delete_link(self, name: str) -> bool:
        """Delete an interface by name (a veth takes its peer along); False when it was not there."""
        try:
            self.request(RTM_DELLINK, 0, _ifinfo() + _name(IFLA_IFNAME, name))
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    def add_veth(self, host_name: str, master: int, mtu: int, peer_name: str, peer_ns_fd: int,
                 peer_mac: str) -> None:
        """One request: the host end enslaved to ``master`` and up, the peer already inside the
        namespace ``peer_ns_fd``, named and with its MAC (the kernel refuses to bring a veth end up
        before its pair exists, so ``configure`` does that from inside)."""
        peer = (_ifinfo() + _name(IFLA_IFNAME, peer_name) + _u32(IFLA_MTU, mtu)
                + _attr(IFLA_ADDRESS, mac_bytes(peer_mac)) + _u32(IFLA_NET_NS_FD, peer_ns_fd))
        info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA | NLA_F_NESTED,
                                                        _attr(VETH_INFO_PEER, peer))
        body = (_ifinfo(0, IFF_UP, IFF_UP) + _name(IFLA_IFNAME, host_name) + _u32(IFLA_MTU, mtu)
                + _u32(IFLA_MASTER, master) + _attr(IFLA_LINKINFO | NLA_F_NESTED, info))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    # -- addresses and routes -------------------------------------------------------------------

    def add_address(self, index: int, ip: str, prefixlen: int) -> None:
        """An IPv4 or IPv6 address; IPv6 ones skip duplicate address detection (usable at once)."""
        v6 = ":" in ip
        family = socket.AF_INET6 if v6 else socket.AF_INET
        raw = socket.inet_pton(family, ip)
        link_local = (raw[:2] == b"\xfe\x80") if v6 else raw[:2] == b"\xa9\xfe"
        body = struct.pack("=BBBBI", family, prefixlen, IFA_F_NODAD if v6 else 0,
                           RT_SCOPE_LINK if link_local else RT_SCOPE_UNIVERSE, index)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw),
                     ok=(errno.EEXIST,))

    def add_default_route(self, gateway: str, index: int) -> bool:
        """Default route (IPv4 or IPv6) via ``gateway``; False when one already exists (an earlier network's)."""
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        body = struct.pack("=BBBBBBBBI", family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0)
        try:
            self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                         body + _attr(RTA_GATEWAY, socket.inet_pton(family, gateway)) + _u32(RTA_OIF, index))
        except NetlinkError as e:
            if e.errno == errno.EEXIST:
                return False
            raise
        return True

    def configure(self, ifname: str, ip: str, prefixlen: int, gateway: str | None,
                  extra: tuple[tuple[str, int, str | None], ...] = ()) -> None:
        """Address the interface ``ifname``, bring it up and add the default route unless internal.
        ``extra`` holds further (address, prefix length, gateway or None): IPv6 and link-local ones."""
        index = self.link_index(ifname)
        if index is None:
            raise NetlinkError(errno.ENODEV, f"{ifname}: no such interface")
        self.add_address(index, ip, prefixlen)
        for addr, plen, _gw in extra:
            self.add_address(index, addr, plen)
        self.set_up(index)
        if gateway:
            self.add_default_route(gateway, index)
        for _addr, _plen, gw6 in extra:
            if gw6:
                self.add_default_route(gw6, index)
