"""Helpers for network tests: a NetworkService on a private bridge/subnet, sockets inside namespaces,
a tiny DNS client and a fake upstream resolver on loopback."""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from dockyard.errors import NotFound
from dockyard.networks import netns
from dockyard.networks.models import ContainerNetConfig
from dockyard.networks.service import NetworkService
from dockyard.networks.store import NetworkStore
from dockyard.storage.db import StateDB
from dockyard.util.ids import new_id


def free_port(proto: str = "tcp") -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def loopback_dns_socket() -> tuple[socket.socket, str]:
    """A UDP socket on port 53 of a loopback address no other test run holds: (socket, address).

    Fake upstream resolvers must sit on port 53 (--dns takes no port), so concurrent runs each pick
    their own 127.x.y.z instead of sharing one fixed address.
    """
    for _ in range(50):
        ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((ip, 53))
        except OSError:
            s.close()
            continue
        return s, ip
    raise OSError("no free loopback address for a fake resolver")


class RecordingContainers:
    """The network service's ContainerDirectory for tests: no container service behind it.

    ``identify`` names the containers the network store knows (unless a test sets ``known``), ``live`` is what
    ``live_ids`` answers, and every ``settings_changed`` is recorded in ``told`` (and passed to ``listener``).
    """

    def __init__(self, db: StateDB) -> None:
        self.store = NetworkStore(db)
        self.live: set[str] = set()
        self.known: dict[str, tuple[str, str]] = {}
        self.told: list[tuple[str, dict[str, Any]]] = []
        self.listener: Callable[[str, dict[str, Any]], None] | None = None

    def live_ids(self) -> set[str]:
        return set(self.live)

    def identify(self, ref: str) -> tuple[str, str]:
        if ref in self.known:
            return self.known[ref]
        for st in self.store.containers():
            if ref in (st.container_id, st.name, "/" + st.name) or (len(ref) >= 3 and st.container_id.startswith(ref)):
                return st.container_id, st.name
        raise NotFound(f"No such container: {ref}")

    def settings_changed(self, cid: str, settings: dict[str, Any]) -> None:
        self.told.append((cid, settings))
        if self.listener is not None:
            self.listener(cid, settings)


class Env:
    """One service with its own data root, prefix, bridge and subnet."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="dytn", dir="/tmp")
        suffix = os.urandom(3).hex()
        self.prefix = f"t{suffix[:5]}"
        self.bridge = f"dyt{suffix}"
        self.third = random.randint(0, 255)
        self.second = random.randint(200, 250)
        self.bip = f"10.{self.second}.{self.third}.1/24"
        self.db = StateDB(os.path.join(self.tmp, "state.db"))
        self.containers = RecordingContainers(self.db)
        self.svc = self.new_service()
        self.upstream = FakeUpstream()
        self.svc.set_dns_upstreams([("127.0.0.1", self.upstream.port)])

    def new_service(self) -> NetworkService:
        return NetworkService(self.db, self.tmp, None, self.containers, bridge=self.bridge, bip=self.bip,
                              prefix=self.prefix)

    def subnet(self, i: int) -> str:
        """A /24 for a user network, away from the default bridge's."""
        return f"10.{self.second}.{(self.third + i) % 256}.0/24"

    def cfg(self, name: str, **kw: Any) -> ContainerNetConfig:
        cid = new_id()
        files = os.path.join(self.tmp, "containers", cid)
        kw.setdefault("hostname", cid[:12])
        return ContainerNetConfig(container_id=cid, name=name, files_dir=files, **kw)

    def leftovers(self) -> list[str]:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        left = [ln.split(":")[1].strip() for ln in out.splitlines()
                if ln.split(":")[1].strip().startswith((self.prefix, self.bridge))]
        for cmd in ("iptables-save", "ip6tables-save"):
            ipt = subprocess.run([cmd], capture_output=True, text=True).stdout
            left += [ln for ln in ipt.splitlines() if f"DOCKYARD-{self.prefix}" in ln or self.bridge in ln]
        with open("/proc/self/mountinfo") as f:
            left += [ln.split()[4] for ln in f if self.tmp in ln.split()[4]]
        return left

    def close(self) -> None:
        self.upstream.close()
        try:
            self.svc.destroy_all()
        finally:
            self.db.close()


def in_ns(path: str, fn: Callable[[], Any]) -> Any:
    return netns.run_in(path, fn)


def tcp_listen(path: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(16)
        return s
    return in_ns(path, make)


def serve_echo(listener: socket.socket, reply: bytes = b"") -> threading.Thread:
    """Accept connections forever (until the listener closes); answer each with its peer address."""
    def loop() -> None:
        while True:
            try:
                c, addr = listener.accept()
            except OSError:
                return
            with c:
                try:
                    c.sendall(reply or f"{addr[0]}".encode())
                except OSError:
                    pass
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def tcp_fetch(host: str, port: int, timeout: float = 3.0, ns: str | None = None) -> bytes:
    def go() -> bytes:
        with socket.create_connection((host, port), timeout=timeout) as c:
            return c.recv(100)
    return in_ns(ns, go) if ns else go()


def dns_query(name: str, qtype: int = 1, qid: int | None = None) -> bytes:
    qid = qid if qid is not None else random.randint(0, 65535)
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def parse_answers(msg: bytes) -> tuple[int, list[str]]:
    """(rcode, A-record addresses) of a response."""
    rcode = struct.unpack("!H", msg[2:4])[0] & 0xF
    an = struct.unpack("!H", msg[6:8])[0]
    pos = 12
    while msg[pos] != 0:
        pos += msg[pos] + 1
    pos += 5
    out = []
    for _ in range(an):
        if msg[pos] & 0xC0:
            pos += 2
        else:
            while msg[pos] != 0:
                pos += msg[pos] + 1
            pos += 1
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(msg[pos:pos + rdlen]))
        pos += rdlen
    return rcode, out


def resolve_in(ns: str, name: str, tcp: bool = False) -> tuple[int, list[str]]:
    """Ask 127.0.0.11 inside the namespace, as a container's libc would."""
    q = dns_query(name)

    def go() -> bytes:
        if tcp:
            with socket.create_connection(("127.0.0.11", 53), timeout=3) as c:
                c.sendall(struct.pack("!H", len(q)) + q)
                ln = struct.unpack("!H", c.recv(2))[0]
                data = b""
                while len(data) < ln:
                    data += c.recv(ln - len(data))
                return data
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(q, ("127.0.0.11", 53))
            return u.recv(4096)
    return parse_answers(in_ns(ns, go))


class FakeUpstream:
    """A resolver on 127.0.0.1 (host namespace) answering every A query with 198.51.100.7."""

    ANSWER = "198.51.100.7"

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        from dockyard.networks.dns import build_answer, parse_question
        while True:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            parsed = parse_question(msg)
            if parsed:
                self.queries.append(parsed[2])
                self.sock.sendto(build_answer(msg, [self.ANSWER]), peer)

    def close(self) -> None:
        self.sock.close()
