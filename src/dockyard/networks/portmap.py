"""Published ports: parsing docker's PortBindings and holding host ports.

Each published host port is held by a socket bound in the daemon (TCP bound but
not listening, UDP bound) for as long as the mapping exists: the bind is what
detects a port already taken by another container or by any host program, and
holding it keeps others from taking it later. Traffic never reaches these sockets;
the DNAT rules redirect it first. Random ports come from the kernel's ephemeral range.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidParameter, SystemError_
from dockyard.networks.models import PortMapping
from dockyard.networks.relay import LoopbackRelay


@dataclass(frozen=True)
class PortRequest:
    """One wanted publication: host port range [lo, hi] (0, 0 = any) for a container port."""

    proto: str
    container_port: int
    host_ip: str
    lo: int
    hi: int
    same_port_as_previous: bool = False  # the [::] twin of a default binding: the host port its IPv4 one got


def parse_port_key(key: str) -> tuple[int, str]:
    """"80/tcp" → (80, "tcp"); the protocol defaults to tcp."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    try:
        return int(port), proto
    except ValueError:
        raise InvalidParameter(f"invalid containerPort: {port}") from None


def _host_range(spec: str) -> tuple[int, int]:
    if not spec:
        return 0, 0
    lo, _, hi = spec.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise InvalidParameter(f"invalid hostPort: {spec}") from None
    if not (0 <= a <= b <= 65535):
        raise InvalidParameter(f"invalid hostPort: {spec}")
    return a, b


def requests_from(port_bindings: dict[str, Any] | None, publish_all: bool,
                  exposed: dict[str, Any] | None, dual_stack: bool = False) -> list[PortRequest]:
    """Flatten HostConfig.PortBindings (+ -P over ExposedPorts) into requests, per address family.

    As dockerd with ip6tables: a binding without a host IP publishes on 0.0.0.0 and, when the container's
    network is dual-stack, on [::] with the same host port; an IPv6 host IP is published only on a
    dual-stack network (elsewhere it is skipped), an IPv4 one only on IPv4."""
    raw: list[PortRequest] = []
    bound: set[str] = set()
    for key, binds in (port_bindings or {}).items():
        cport, proto = parse_port_key(key)
        bound.add(f"{cport}/{proto}")
        for b in binds or [{}]:
            host_ip = str((b or {}).get("HostIp") or "")
            lo, hi = _host_range(str((b or {}).get("HostPort") or ""))
            raw.append(PortRequest(proto, cport, host_ip, lo, hi))
    if publish_all:
        for key in exposed or {}:
            cport, proto = parse_port_key(key)
            if f"{cport}/{proto}" not in bound:
                raw.append(PortRequest(proto, cport, "", 0, 0))
    return by_family(raw, dual_stack)


def by_family(raw: list[PortRequest], dual_stack: bool) -> list[PortRequest]:
    """Requests with a concrete host address each: "" becomes 0.0.0.0 (and its [::] twin when dual-stack)."""
    out: list[PortRequest] = []
    for r in raw:
        host_ip = r.host_ip.strip("[]")
        if not host_ip:
            out.append(PortRequest(r.proto, r.container_port, "0.0.0.0", r.lo, r.hi))
            if dual_stack:
                out.append(PortRequest(r.proto, r.container_port, "::", r.lo, r.hi, same_port_as_previous=True))
        elif ":" in host_ip:
            if dual_stack:
                out.append(PortRequest(r.proto, r.container_port, host_ip, r.lo, r.hi))
        else:
            out.append(PortRequest(r.proto, r.container_port, host_ip, r.lo, r.hi))
    return out


def is_v6(pm: PortMapping) -> bool:
    return ":" in pm.host_ip


def port_tuples(ports: list[PortMapping], v6: bool) -> list[tuple[str, str, int, int]]:
    """(proto, host_ip, host_port, container_port) of one family's mappings, as the firewall takes them."""
    return [(p.proto, p.host_ip, p.host_port, p.container_port) for p in ports if is_v6(p) == v6]


def _sock_type(proto: str) -> int:
    return socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM


class PortAllocator:
    """Host ports held per owner (a container id); all-or-nothing reservation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[PortMapping, socket.socket]]] = {}
        self._relays: dict[str, dict[tuple[str, str, int], LoopbackRelay]] = {}

    def _bind(self, proto: str, host_ip: str, port: int) -> socket.socket | None:
        family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
        s = socket.socket(family, _sock_type(proto) if proto != "sctp" else socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # [::] holds the IPv6 port only
            s.bind((host_ip, port))
        except OSError:
            s.close()
            return None
        return s

    def _bind_pair(self, req: PortRequest, twin: PortRequest) -> tuple[socket.socket, socket.socket] | None:
        """One host port free on both families (docker gives a default binding's 0.0.0.0 and [::] the same)."""
        tries = range(req.lo, req.hi + 1) if req.lo else range(64)
        for port in tries:
            s4 = self._bind(req.proto, req.host_ip, port if req.lo else 0)
            if s4 is None:
                continue
            s6 = self._bind(twin.proto, twin.host_ip, s4.getsockname()[1])
            if s6 is not None:
                return s4, s6
            s4.close()
        return None

    @staticmethod
    def _taken(req: PortRequest, endpoint_label: str) -> SystemError_:
        shown = f"{req.lo}" if req.lo == req.hi else f"{req.lo}-{req.hi}"
        addr = f"[{req.host_ip}]" if ":" in req.host_ip else req.host_ip
        prefix = (f"driver failed programming external connectivity on endpoint {endpoint_label}: "
                  if endpoint_label else "")
        return SystemError_(f"{prefix}Bind for {addr}:{shown} failed: port is already allocated")

    def reserve(self, owner: str, wanted: list[PortRequest], endpoint_label: str = "") -> list[PortMapping]:
        """Bind every wanted port or none; raise docker's "port is already allocated" error."""
        got: list[tuple[PortMapping, socket.socket]] = []
        with self._lock:
            try:
                for i, req in enumerate(wanted):
                    if req.same_port_as_previous:
                        continue  # bound with the request before it
                    twin = wanted[i + 1] if i + 1 < len(wanted) and wanted[i + 1].same_port_as_previous else None
                    if twin is not None:
                        pair = self._bind_pair(req, twin)
                        if pair is None:
                            raise self._taken(twin if req.lo and self._bind_free(req) else req, endpoint_label)
                        for r, sock in ((req, pair[0]), (twin, pair[1])):
                            got.append((PortMapping(r.proto, r.container_port, r.host_ip, sock.getsockname()[1]),
                                        sock))
                        continue
                    s: socket.socket | None = None
                    if req.lo == 0:
                        s = self._bind(req.proto, req.host_ip, 0)
                    else:
                        for port in range(req.lo, req.hi + 1):
                            s = self._bind(req.proto, req.host_ip, port)
                            if s is not None:
                                break
                    if s is None:
                        raise self._taken(req, endpoint_label)
                    pm = PortMapping(req.proto, req.container_port, req.host_ip, s.getsockname()[1])
                    got.append((pm, s))
            except BaseException:
                for _, s in got:
                    s.close()
                raise
            self._held.setdefault(owner, []).extend(got)
        return [pm for pm, _ in got]

    def _bind_free(self, req: PortRequest) -> bool:
        """Whether some port of ``req``'s range is free on its own address family (which side was taken)."""
        for port in range(req.lo, req.hi + 1):
            s = self._bind(req.proto, req.host_ip, port)
            if s is not None:
                s.close()
                return True
        return False

    def adopt(self, owner: str, mappings: list[PortMapping]) -> None:
        """Re-hold the ports of a container that survived a daemon restart (best effort)."""
        with self._lock:
            for pm in mappings:
                s = self._bind(pm.proto, pm.host_ip, pm.host_port)
                if s is not None:
                    self._held.setdefault(owner, []).append((pm, s))

    def relay_loopback6(self, owner: str, target_ip6: str) -> None:
        """Serve ``[::1]`` for the owner's IPv6 TCP ports on [::] or [::1] (see relay.py); idempotent."""
        with self._lock:
            relays = self._relays.setdefault(owner, {})
            for pm, s in self._held.get(owner, []):
                key = (pm.proto, pm.host_ip, pm.host_port)
                if pm.proto != "tcp" or pm.host_ip not in ("::", "::1") or key in relays:
                    continue
                relays[key] = LoopbackRelay(s, target_ip6, pm.container_port)
            if not relays:
                self._relays.pop(owner, None)

    def _stop_relay(self, owner: str, pm: PortMapping) -> None:
        relay = self._relays.get(owner, {}).pop((pm.proto, pm.host_ip, pm.host_port), None)
        if relay is not None:
            relay.close()

    def release(self, owner: str, only: list[PortMapping] | None = None) -> None:
        with self._lock:
            keep = []
            for pm, s in self._held.pop(owner, []):
                if only is None or pm in only:
                    self._stop_relay(owner, pm)
                    s.close()
                else:
                    keep.append((pm, s))
            if keep:
                self._held[owner] = keep
            if not self._relays.get(owner):
                self._relays.pop(owner, None)

    def release_all(self) -> None:
        with self._lock:
            for relays in self._relays.values():
                for relay in relays.values():
                    relay.close()
            self._relays.clear()
            for items in self._held.values():
                for _, s in items:
                    s.close()
            self._held.clear()


def settings_ports(mappings: list[PortMapping], exposed: dict[str, Any] | None) -> dict[str, Any]:
    """NetworkSettings.Ports: published ports with their bindings, exposed-only ones as null."""
    out: dict[str, Any] = {}
    for key in exposed or {}:
        cport, proto = parse_port_key(key)
        out.setdefault(f"{cport}/{proto}", None)
    for pm in mappings:
        cur = out.get(pm.key()) or []
        cur.append({"HostIp": pm.host_ip, "HostPort": str(pm.host_port)})
        out[pm.key()] = cur
    return out


def parse_publish(spec: str) -> list[PortRequest]:
    """docker -p syntax: [ip:][hostPort[-hi]:]containerPort[-hi][/proto] → requests (container ranges expanded)."""
    rest, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    parts = rest.rsplit(":", 2)
    if len(parts) == 3:
        host_ip, host, cont = parts
    elif len(parts) == 2:
        host_ip, (host, cont) = "", parts
    else:
        host_ip, host, cont = "", "", parts[0]
    host_ip = host_ip.strip("[]")  # "" is the default binding: 0.0.0.0, and [::] on a dual-stack network
    clo, chi = _host_range(cont)
    if clo == 0:
        raise InvalidParameter(f"invalid containerPort: {cont}")
    hlo, hhi = _host_range(host)
    if chi > clo:
        if hlo and hhi - hlo != chi - clo:
            raise InvalidParameter(f"invalid ranges specified for container and host Ports: {cont} and {host}")
        return [PortRequest(proto, c, host_ip, hlo + i if hlo else 0, hlo + i if hlo else 0)
                for i, c in enumerate(range(clo, chi + 1))]
    return [PortRequest(proto, clo, host_ip, hlo, hhi)]
