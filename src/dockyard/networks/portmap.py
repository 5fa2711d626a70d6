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


@dataclass(frozen=True)
class PortRequest:
    """One wanted publication: host port range [lo, hi] (0, 0 = any) for a container port."""

    proto: str
    container_port: int
    host_ip: str
    lo: int
    hi: int


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
                  exposed: dict[str, Any] | None) -> list[PortRequest]:
    """Flatten HostConfig.PortBindings (+ -P over ExposedPorts) into requests; IPv6 host IPs are skipped."""
    out: list[PortRequest] = []
    bound: set[str] = set()
    for key, binds in (port_bindings or {}).items():
        cport, proto = parse_port_key(key)
        bound.add(f"{cport}/{proto}")
        for b in binds or [{}]:
            host_ip = (b or {}).get("HostIp") or "0.0.0.0"
            if ":" in host_ip:
                continue
            lo, hi = _host_range(str((b or {}).get("HostPort") or ""))
            out.append(PortRequest(proto, cport, host_ip, lo, hi))
    if publish_all:
        for key in exposed or {}:
            cport, proto = parse_port_key(key)
            if f"{cport}/{proto}" not in bound:
                out.append(PortRequest(proto, cport, "0.0.0.0", 0, 0))
    return out


def _sock_type(proto: str) -> int:
    return socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM


class PortAllocator:
    """Host ports held per owner (a container id); all-or-nothing reservation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[tuple[PortMapping, socket.socket]]] = {}

    def _bind(self, proto: str, host_ip: str, port: int) -> socket.socket | None:
        s = socket.socket(socket.AF_INET, _sock_type(proto) if proto != "sctp" else socket.SOCK_STREAM)
        try:
            s.bind((host_ip, port))
        except OSError:
            s.close()
            return None
        return s

    def reserve(self, owner: str, wanted: list[PortRequest], endpoint_label: str = "") -> list[PortMapping]:
        """Bind every wanted port or none; raise docker's "port is already allocated" error."""
        got: list[tuple[PortMapping, socket.socket]] = []
        with self._lock:
            try:
                for req in wanted:
                    s: socket.socket | None = None
                    if req.lo == 0:
                        s = self._bind(req.proto, req.host_ip, 0)
                    else:
                        for port in range(req.lo, req.hi + 1):
                            s = self._bind(req.proto, req.host_ip, port)
                            if s is not None:
                                break
                    if s is None:
                        shown = f"{req.lo}" if req.lo == req.hi else f"{req.lo}-{req.hi}"
                        prefix = (f"driver failed programming external connectivity on endpoint {endpoint_label}: "
                                  if endpoint_label else "")
                        raise SystemError_(f"{prefix}Bind for {req.host_ip}:{shown} failed: port is already allocated")
                    pm = PortMapping(req.proto, req.container_port, req.host_ip, s.getsockname()[1])
                    got.append((pm, s))
            except BaseException:
                for _, s in got:
                    s.close()
                raise
            self._held.setdefault(owner, []).extend(got)
        return [pm for pm, _ in got]

    def adopt(self, owner: str, mappings: list[PortMapping]) -> None:
        """Re-hold the ports of a container that survived a daemon restart (best effort)."""
        with self._lock:
            for pm in mappings:
                s = self._bind(pm.proto, pm.host_ip, pm.host_port)
                if s is not None:
                    self._held.setdefault(owner, []).append((pm, s))

    def release(self, owner: str, only: list[PortMapping] | None = None) -> None:
        with self._lock:
            keep = []
            for pm, s in self._held.pop(owner, []):
                if only is None or pm in only:
                    s.close()
                else:
                    keep.append((pm, s))
            if keep:
                self._held[owner] = keep

    def release_all(self) -> None:
        with self._lock:
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
    host_ip = host_ip.strip("[]") or "0.0.0.0"
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
