"""The API server framework: routing, version negotiation, errors, streaming, hijack."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Empty, Stream
from dockyard.api.router import Router
from dockyard.api.server import UnixAPIServer
from dockyard.errors import Conflict, NotModified


def _router() -> Router:
    r = Router()

    @r.get("/things/{id}/json")
    def thing(req: Request) -> JSON:
        return JSON({"id": req.params["id"], "v": req.api_version, "all": req.q_bool("all")})

    @r.get("/images/{name:path}/json")
    def image(req: Request) -> JSON:
        return JSON({"name": req.params["name"]})

    @r.post("/echo")
    def echo(req: Request) -> JSON:
        return JSON(req.json(), status=201)

    @r.post("/conflict")
    def conflict(req: Request) -> JSON:
        raise Conflict("name in use")

    @r.post("/started")
    def started(req: Request) -> JSON:
        raise NotModified("already")

    @r.delete("/empty")
    def empty(req: Request) -> Empty:
        return Empty()

    @r.get("/stream")
    def stream(req: Request) -> Stream:
        def gen() -> Iterator[bytes]:
            for i in range(3):
                yield json.dumps({"i": i}).encode() + b"\n"

        return Stream(gen())

    @r.get("/whoami")
    def whoami(req: Request) -> JSON:
        return JSON({"thread": threading.current_thread().name})

    @r.post("/hijack")
    def hijack(req: Request) -> None:
        conn = req.hijack()
        data = conn.recv(5)
        conn.sendall(data.upper())
        conn.close()

    return r


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnixAPIServer]:
    path = str(tmp_path_factory.mktemp("api") / "s.sock")
    srv = UnixAPIServer(path, _router(), Services(config=None, db=None, events=None, images=None, containers=None,  # type: ignore[arg-type]
                                                  execs=None, networks=None, volumes=None, builds=None,
                        distribution=None))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def sock_path(server: UnixAPIServer) -> str:
    return str(server.server_address)


def _raw(path: str, data: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out


def _req(path: str, method: str, url: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes, bytes]:
    head = f"{method} {url} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n{headers}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    out = _raw(path, head.encode() + b"\r\n" + body)
    hdr, _, payload = out.partition(b"\r\n\r\n")
    return int(hdr.split(b" ")[1]), hdr, payload


def test_route_params_and_version_prefix(sock_path: str) -> None:
    status, hdr, body = _req(sock_path, "GET", "/v1.41/things/abc/json?all=1")
    assert status == 200
    assert json.loads(body) == {"id": "abc", "v": "1.41", "all": True}
    assert b"Api-Version: 1.47" in hdr


def test_path_param_with_slashes(sock_path: str) -> None:
    status, _, body = _req(sock_path, "GET", "/images/host:5000/a/b:tag/json")
    assert status == 200 and json.loads(body) == {"name": "host:5000/a/b:tag"}


def test_version_too_new_and_too_old(sock_path: str) -> None:
    status, _, body = _req(sock_path, "GET", "/v1.99/things/a/json")
    assert status == 400 and b"too new" in body
    status, _, body = _req(sock_path, "GET", "/v1.12/things/a/json")
    assert status == 400 and b"Minimum supported API version is 1.24" in body


def test_unknown_route_is_404_json(sock_path: str) -> None:
    status, _, body = _req(sock_path, "GET", "/nope")
    assert status == 404 and json.loads(body) == {"message": "page not found"}


def test_errors_map_to_status_and_message(sock_path: str) -> None:
    status, _, body = _req(sock_path, "POST", "/conflict")
    assert status == 409 and json.loads(body) == {"message": "name in use"}
    status, _, body = _req(sock_path, "POST", "/started")
    assert status == 304 and body == b""


def test_json_body_and_malformed_json(sock_path: str) -> None:
    status, _, body = _req(sock_path, "POST", "/echo", b'{"a": 1}')
    assert status == 201 and json.loads(body) == {"a": 1}
    status, _, body = _req(sock_path, "POST", "/echo", b'{"a": ')
    assert status == 400 and b"invalid JSON" in body


def test_chunked_request_body(sock_path: str) -> None:
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\n{\"a\"\r\n4\r\n: 2}\r\n0\r\n\r\n")
    out = _raw(sock_path, raw)
    assert out.startswith(b"HTTP/1.1 201") and out.endswith(b'{"a": 2}\n')


def test_stream_is_chunked(sock_path: str) -> None:
    status, hdr, body = _req(sock_path, "GET", "/stream")
    assert status == 200 and b"Transfer-Encoding: chunked" in hdr
    assert body.startswith(b"9\r\n{\"i\": 0}\n\r\n") and body.endswith(b"0\r\n\r\n")


def test_keep_alive_serves_two_requests(sock_path: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("rb")
    for _ in range(2):
        s.sendall(b"DELETE /empty HTTP/1.1\r\nHost: x\r\n\r\n")
        line = f.readline()
        assert line.startswith(b"HTTP/1.1 204")
        while f.readline() not in (b"\r\n", b""):
            pass
    s.close()


def test_hijack_upgrades_and_streams(sock_path: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"POST /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello")
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    assert out.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert out.endswith(b"\r\n\r\nHELLO")


def test_connection_threads_wait_for_the_next_connection(server: UnixAPIServer, sock_path: str) -> None:
    names = set()
    for _ in range(20):
        waiting = max(server._idle, 1)
        names.add(json.loads(_req(sock_path, "GET", "/whoami")[2])["thread"])
        # the reply reaches the client a moment before its thread is back to waiting: let it get there
        deadline = time.monotonic() + 5
        while server._idle < waiting and time.monotonic() < deadline:
            time.sleep(0.001)
    assert len(names) <= 2  # one waiting thread serves one connection after the other


def test_more_held_connections_than_waiting_threads_are_all_served(sock_path: str) -> None:
    conns = []
    for _ in range(12):  # more than the threads kept waiting: each held connection gets a thread
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        s.sendall(b"POST /hijack HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        conns.append(s)
    for s in conns:
        s.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
    for i, s in enumerate(conns):
        s.sendall(f"ab{i:03d}".encode())
    for i, s in enumerate(conns):
        out = b""
        while chunk := s.recv(100):
            out += chunk
        s.close()
        assert out == f"AB{i:03d}".encode()
    assert _req(sock_path, "GET", "/whoami")[0] == 200
