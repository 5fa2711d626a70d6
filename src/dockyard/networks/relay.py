"""The userland relay of a published IPv6 TCP port for connections to ``[::1]``.

IPv6 has no ``route_localnet``: a packet from ``::1`` DNATed to a container's address is dropped by the
kernel, so the ip6tables rules cannot serve the host's own loopback clients (dockerd relies on docker-proxy
there too). The daemon already holds the published port with a bound socket; for ``[::]`` and ``[::1]``
TCP bindings that socket listens, and each accepted connection is copied both ways to the container's
IPv6 address. Every other path (other hosts, the host's own non-loopback addresses, other containers) is
DNATed by the kernel before it could reach this socket.
"""

from __future__ import annotations

import logging
import select
import socket
import threading

log = logging.getLogger("dockyard.networks")

_CHUNK = 64 * 1024


class LoopbackRelay:
    """Accepts on a held listening socket and relays each connection to (target_ip, target_port)."""

    def __init__(self, listener: socket.socket, target_ip: str, target_port: int) -> None:
        self._listener = listener
        self._target = (target_ip, target_port)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closed = False
        listener.listen(128)
        self._thread = threading.Thread(target=self._accept_loop, name=f"relay6-{target_port}", daemon=True)
        self._thread.start()

    @property
    def target(self) -> tuple[str, int]:
        return self._target

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return  # the listener was shut down: the port was unpublished
            try:
                local = client.getsockname()[0]
            except OSError:
                local = ""
            if local != "::1":  # everything else is the kernel's DNAT; reaching here means a rule is missing
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self._conns.add(client)
            threading.Thread(target=self._serve, args=(client,), name="relay6-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection(self._target, timeout=10)
            upstream.settimeout(None)
            with self._lock:
                if self._closed:
                    return
                self._conns.add(upstream)
            _pump(client, upstream)
        except OSError as e:
            log.debug("relay to [%s]:%d: %s", self._target[0], self._target[1], e)
        finally:
            with self._lock:
                self._conns.discard(client)
                if upstream is not None:
                    self._conns.discard(upstream)
            client.close()
            if upstream is not None:
                upstream.close()

    def close(self) -> None:
        """Stop accepting and end the relayed connections (as docker-proxy exiting does)."""
        with self._lock:
            self._closed = True
            conns = list(self._conns)
            self._conns.clear()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides have closed; a half-close is passed on as a shutdown."""
    peer = {a: b, b: a}
    open_in = {a, b}
    while open_in:
        ready, _, _ = select.select(list(open_in), [], [])
        for src in ready:
            try:
                data = src.recv(_CHUNK)
            except OSError:
                data = b""
            dst = peer[src]
            if not data:
                open_in.discard(src)
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            try:
                dst.sendall(data)
            except OSError:
                return
