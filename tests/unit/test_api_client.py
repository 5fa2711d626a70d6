"""The hand-written HTTP client against a small scripted server: framing, negotiation, errors, hijack, TLS."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator

import pytest

from dockyard.client.api_client import (
    APIClient,
    APIError,
    Conflict,
    DaemonUnreachable,
    encode_query,
    iter_multiplexed,
)
from helpers.http import read_request

Handler = Callable[[str, str, dict[str, str], bytes, socket.socket], None]




class ScriptedServer:
    """Serves each connection with ``handler``; /_ping answers with ``api_version``."""

    def __init__(self, handler: Handler, api_version: str = "1.47", sock: socket.socket | None = None,
                 wrap: Callable[[socket.socket], socket.socket] | None = None) -> None:
        self.handler = handler
        self.api_version = api_version
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.sock = sock
        self.wrap = wrap
        assert self.sock is not None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        assert self.sock is not None
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            if self.wrap:
                conn = self.wrap(conn)
            f = conn.makefile("rb")
            method, target, headers, body = read_request(f)
            self.seen.append((method, target, headers, body))
            if target == "/_ping":
                conn.sendall(f"HTTP/1.1 200 OK\r\nApi-Version: {self.api_version}\r\nContent-Length: 2\r\n\r\nOK"
                             .encode())
            else:
                self.handler(method, target, headers, body, conn)
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


@pytest.fixture
def unix_server(tmp_path) -> Iterator[Callable[..., tuple[ScriptedServer, str]]]:  # type: ignore[no-untyped-def]
    socks: list[socket.socket] = []

    def make(handler: Handler, api_version: str = "1.47") -> tuple[ScriptedServer, str]:
        path = os.path.join(str(tmp_path), f"s{len(socks)}.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(8)
        socks.append(s)
        return ScriptedServer(handler, api_version, s), f"unix://{path}"

    yield make
    for s in socks:
        s.close()


def _json(conn: socket.socket, status: int, obj: object) -> None:
    body = json.dumps(obj).encode()
    conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                 .encode() + body)


def test_negotiates_down_to_the_server_version(unix_server) -> None:  # type: ignore[no-untyped-def]
    srv, host = unix_server(lambda m, t, h, b, c: _json(c, 200, {"t": t}), api_version="1.41")
    client = APIClient(host)
    assert client.get("/info") == {"t": "/v1.41/info"}
    srv2, host2 = unix_server(lambda m, t, h, b, c: _json(c, 200, {"t": t}), api_version="1.50")
    assert APIClient(host2).get("/info") == {"t": "/v1.47/info"}


def test_json_body_query_and_error_message(unix_server) -> None:  # type: ignore[no-untyped-def]
    def handler(m: str, t: str, h: dict[str, str], b: bytes, c: socket.socket) -> None:
        if "fail" in t:
            _json(c, 409, {"message": "Conflict. The container name is in use"})
        else:
            _json(c, 201, {"method": m, "target": t, "body": json.loads(b), "ctype": h.get("content-type")})

    _, host = unix_server(handler)
    client = APIClient(host)
    got = client.post("/containers/create", {"name": "a b", "x": None, "flag": True}, {"Image": "busybox"})
    assert got == {"method": "POST", "target": "/v1.47/containers/create?name=a%20b&flag=1",
                   "body": {"Image": "busybox"}, "ctype": "application/json"}
    with pytest.raises(APIError) as e:
        client.post("/fail")
    assert e.value.status == 409 and e.value.message == "Conflict. The container name is in use"
    assert type(e.value) is Conflict


def test_chunked_json_stream_split_anywhere(unix_server) -> None:  # type: ignore[no-untyped-def]
    payload = b'{"a":1}\n{"b":' + b'2}\n{"c":3}\n'

    def handler(m: str, t: str, h: dict[str, str], b: bytes, c: socket.socket) -> None:
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(payload), 5):
            piece = payload[i:i + 5]
            c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        c.sendall(b"0\r\n\r\n")

    _, host = unix_server(handler)
    assert list(APIClient(host).stream_json("GET", "/events")) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_multiplexed_frames() -> None:
    frames = b"\x01\x00\x00\x00\x00\x00\x00\x03out" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    pieces = [frames[i:i + 3] for i in range(0, len(frames), 3)]
    assert list(iter_multiplexed(iter(pieces))) == [(1, b"out"), (2, b"err\n")]


def _recv_all(recv: Callable[[int], bytes]) -> bytes:
    """Everything until the peer's EOF, read in small pieces."""
    data = b""
    while piece := recv(100):
        data += piece
    return data


def test_hijack_keeps_bytes_sent_with_the_upgrade(unix_server) -> None:  # type: ignore[no-untyped-def]
    def handler(m: str, t: str, h: dict[str, str], b: bytes, c: socket.socket) -> None:
        assert h.get("upgrade") == "tcp" and h.get("connection") == "Upgrade"
        c.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly")
        c.sendall(b"echo:" + _recv_all(c.recv))

    _, host = unix_server(handler)
    conn = APIClient(host).hijack("POST", "/containers/x/attach", {"stream": True})
    assert conn.recv(100) == b"early"
    conn.sendall(b"stdin data")
    conn.shutdown_write()
    got = _recv_all(conn.recv)
    conn.close()
    assert got == b"echo:stdin data"


def test_unreachable_daemon() -> None:
    with pytest.raises(DaemonUnreachable) as e:
        APIClient("unix:///tmp/dy-nothing-here.sock").get("/info")
    assert str(e.value) == ("Cannot connect to the dockyard daemon at unix:///tmp/dy-nothing-here.sock. "
                            "Is the dockyard daemon running?")


def test_encode_query_filters() -> None:
    assert encode_query({"filters": {"name": {"web": True}}}) == "?filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_with_docker_cert_path(monkeypatch: pytest.MonkeyPatch) -> None:
    d = tempfile.mkdtemp(prefix="dytls")
    try:
        for name in ("ca", "cert"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                            "-keyout", os.path.join(d, f"{name}-key.pem"), "-out", os.path.join(d, f"{name}.pem")],
                           check=True, capture_output=True)
        # the server certificate doubles as its own CA; the client presents cert.pem/key.pem
        shutil.copy(os.path.join(d, "cert.pem"), os.path.join(d, "srv.pem"))
        shutil.copy(os.path.join(d, "cert-key.pem"), os.path.join(d, "key.pem"))
        shutil.copy(os.path.join(d, "srv.pem"), os.path.join(d, "ca.pem"))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "key.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.path.join(d, "ca.pem"))
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)
        port = lsock.getsockname()[1]
        ScriptedServer(lambda m, t, h, b, c: _json(c, 200, {"secure": True}), sock=lsock,
                       wrap=lambda c: ctx.wrap_socket(c, server_side=True))
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", d)
        assert APIClient(f"tcp://127.0.0.1:{port}").get("/info") == {"secure": True}
        lsock.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
