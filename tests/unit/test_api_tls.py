"""The TLS listener: the handshake runs on the connection's thread, so a client that never shakes hands
stalls nobody; answers are whole (head and body) and verified clients still get through."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON
from dockyard.api.router import Router
from dockyard.api.server import TLSAPIServer, make_tls_context
from helpers.registry import CertAuthority


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, CertAuthority]]:
    ca = CertAuthority(str(tmp_path_factory.mktemp("tls")))
    cert, key = ca.issue("server", ips=["127.0.0.1"])
    r = Router()

    @r.get("/_ping")
    def ping(req: Request) -> JSON:
        return JSON({"ok": True}, headers={"X-Test": "1"})

    services = Services(config=None, db=None, events=None, images=None, containers=None,  # type: ignore[arg-type]
                        execs=None, networks=None, volumes=None, builds=None,
                        distribution=None)
    srv = TLSAPIServer(("127.0.0.1", 0), r, services, make_tls_context(cert, key, ca.cert_path, verify=False))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1], ca
    srv.shutdown()
    srv.server_close()


def _get(port: int, ca: CertAuthority) -> bytes:
    ctx = ssl.create_default_context(cafile=ca.cert_path)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_a_client_that_never_shakes_hands_stalls_no_one(tls_server: tuple[int, CertAuthority]) -> None:
    port, ca = tls_server
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]  # connected, never say hello
    try:
        time.sleep(0.2)  # let the server accept them
        start = time.monotonic()
        out = _get(port, ca)
        elapsed = time.monotonic() - start
    finally:
        for s in silent:
            s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nX-Test: 1\r\n" in head and b"Api-Version: " in head
    assert body == b'{"ok": true}\n' and head.endswith(b"\r\nContent-Length: 13")
    # a handshake on the accept loop would wait out each silent client's 10 s handshake timeout first
    assert elapsed < 5.0, elapsed


def test_a_failed_handshake_does_not_stop_the_listener(tls_server: tuple[int, CertAuthority]) -> None:
    port, ca = tls_server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\n\r\n")  # plain HTTP to a TLS port
        try:
            s.recv(100)
        except OSError:
            pass
    assert _get(port, ca).startswith(b"HTTP/1.1 200 OK")
