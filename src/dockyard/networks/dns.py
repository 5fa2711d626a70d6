"""The embedded DNS server that user-network containers reach at 127.0.0.11.

One selector thread in the daemon serves every container: for each one a UDP and a
TCP socket are created *inside* the container's namespace (on a short-lived thread
that setns()es in) and bound to 127.0.0.11:53, so no DNAT is needed. Container names
and aliases are answered from the service's tables; any other name is forwarded
from the daemon's own (host) namespace to the upstream servers, which is why a
loopback stub resolver such as 127.0.0.53 in the host's resolv.conf works (moby#38243).
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from dockyard.networks import netns

LISTEN_IP = "127.0.0.11"
QTYPE_A = 1
QTYPE_AAAA = 28
QTYPE_ANY = 255
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
TTL = 600
UPSTREAM_TIMEOUT = 2.0

# (container key, query name) -> addresses, or None when the name is not ours
Resolver = Callable[[str, str], list[str] | None]
# container key -> upstream (ip, port) servers
Upstreams = Callable[[str], list[tuple[str, int]]]


def parse_question(msg: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, qname, qtype, end of question) of a query, or None when malformed."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd < 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(msg):
            return None
        labels.append(msg[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, pos + 4


def build_answer(query: bytes, addresses: list[str], rcode: int = 0) -> bytes:
    """A response echoing the question with one A (IPv4) or AAAA (IPv6) record per address."""
    parsed = parse_question(query)
    assert parsed is not None
    qid, flags, _name, _qtype, qend = parsed
    rflags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode  # QR, RD copied, RA
    head = struct.pack("!HHHHHH", qid, rflags, 1, len(addresses), 0, 0)
    body = bytearray(query[12:qend])
    for addr in addresses:
        packed = ipaddress.ip_address(addr).packed
        rtype = QTYPE_AAAA if len(packed) == 16 else QTYPE_A
        body += struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(packed)) + packed
    return head + bytes(body)


def for_qtype(addresses: list[str], qtype: int) -> list[str]:
    """The addresses an A, AAAA or ANY question asks for (none for other types: an empty NOERROR)."""
    if qtype == QTYPE_ANY:
        return list(addresses)
    if qtype == QTYPE_A:
        return [a for a in addresses if ":" not in a]
    if qtype == QTYPE_AAAA:
        return [a for a in addresses if ":" in a]
    return []


def servfail(query: bytes) -> bytes:
    return build_answer(query, [], RCODE_SERVFAIL)


def listener_sockets() -> list[socket.socket]:
    """UDP and TCP sockets bound to 127.0.0.11:53 in the calling thread's network namespace."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind((LISTEN_IP, 53))
        t.bind((LISTEN_IP, 53))
        t.listen(64)
    except BaseException:
        u.close()
        t.close()
        raise
    return [u, t]


class DNSServer:
    """Serves every container's 127.0.0.11 listeners from one thread; forwards on a small pool."""

    def __init__(self, resolve: Resolver, upstreams: Upstreams) -> None:
        self._resolve = resolve
        self._upstreams = upstreams
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._listeners: dict[str, list[socket.socket]] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns-forward")
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", ""))
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="dns-server", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for key in list(self._listeners):
                self._close(key)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- listeners ------------------------------------------------------------------------------

    def add_listener(self, key: str, ns_path: str) -> None:
        """Bind 127.0.0.11:53 (UDP and TCP) inside the namespace at ``ns_path`` for container ``key``."""
        with self._lock:
            if key in self._listeners:
                return
        self.adopt(key, netns.run_in(ns_path, listener_sockets))

    def adopt(self, key: str, socks: list[socket.socket]) -> None:
        """Serve container ``key`` on sockets made by ``listener_sockets`` inside its namespace."""
        with self._lock:
            if key in self._listeners:
                for s in socks:
                    s.close()
                return
            for s in socks:
                s.setblocking(False)
            self._sel.register(socks[0], selectors.EVENT_READ, ("udp", key))
            self._sel.register(socks[1], selectors.EVENT_READ, ("tcp", key))
            self._listeners[key] = socks
        self._wake_w.send(b"x")

    def remove_listener(self, key: str) -> None:
        with self._lock:
            self._close(key)

    def _close(self, key: str) -> None:
        for s in self._listeners.pop(key, []):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    # -- serving --------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            for skey, _ in self._sel.select(timeout=1.0):
                kind, key = skey.data
                sock = skey.fileobj
                assert isinstance(sock, socket.socket)
                if kind == "wake":
                    try:
                        sock.recv(512)
                    except BlockingIOError:
                        pass
                elif kind == "udp":
                    self._on_udp(sock, key)
                else:
                    self._on_tcp_accept(sock, key)

    def _on_udp(self, sock: socket.socket, key: str) -> None:
        try:
            msg, peer = sock.recvfrom(4096)
        except (BlockingIOError, OSError):
            return
        local = self._answer_local(key, msg)
        if local is not None:
            self._send_udp(sock, local, peer)
            return
        if parse_question(msg) is None:
            return
        self._pool.submit(self._forward_udp, sock, key, msg, peer)

    def _send_udp(self, sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        try:
            sock.sendto(data, peer)
        except OSError:
            pass

    def _answer_local(self, key: str, msg: bytes) -> bytes | None:
        """The reply for one of our names, or None to forward."""
        parsed = parse_question(msg)
        if parsed is None:
            return None
        _qid, _flags, name, qtype, _ = parsed
        addrs = self._resolve(key, name.rstrip("."))
        if addrs is None:
            return None
        return build_answer(msg, for_qtype(addrs, qtype))

    def _forward_udp(self, sock: socket.socket, key: str, msg: bytes, peer: tuple[str, int]) -> None:
        reply = self._ask_upstream(key, msg, tcp=False)
        self._send_udp(sock, reply, peer)

    def _ask_upstream(self, key: str, msg: bytes, tcp: bool) -> bytes:
        for ip, port in self._upstreams(key):
            try:
                if tcp:
                    with socket.create_connection((ip, port), timeout=UPSTREAM_TIMEOUT) as c:
                        c.sendall(struct.pack("!H", len(msg)) + msg)
                        return _recv_framed(c) or servfail(msg)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.settimeout(UPSTREAM_TIMEOUT)
                    u.connect((ip, port))
                    u.send(msg)
                    while True:
                        data = u.recv(65535)
                        if data[:2] == msg[:2]:
                            return data
            except OSError:
                continue
        return servfail(msg)

    def _on_tcp_accept(self, sock: socket.socket, key: str) -> None:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, OSError):
            return
        conn.setblocking(True)
        conn.settimeout(5)
        self._pool.submit(self._serve_tcp, conn, key)

    def _serve_tcp(self, conn: socket.socket, key: str) -> None:
        with conn:
            while True:
                msg = _recv_framed(conn)
                if not msg:
                    return
                reply = self._answer_local(key, msg)
                if reply is None:
                    reply = self._ask_upstream(key, msg, tcp=True) if parse_question(msg) else servfail(msg)
                try:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    return


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        try:
            chunk = conn.recv(n - len(buf))
        except OSError:
            return b""
        if not chunk:
            return b""
        buf += chunk
    return buf


def _recv_framed(conn: socket.socket) -> bytes:
    head = _recv_exact(conn, 2)
    if len(head) < 2:
        return b""
    return _recv_exact(conn, struct.unpack("!H", head)[0])
