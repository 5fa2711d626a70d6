"""Small helpers shared by the I/O tests: raw hijacked connections and docker's stream framing."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from helpers.daemon import TestDaemon


def hijack(daemon: TestDaemon, path: str, body: Any = None, timeout: float = 20.0) -> tuple[socket.socket, bytes]:
    """POST ``path`` asking for an upgrade; returns the raw socket and the response head."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(daemon.socket)
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    sock.sendall(head + data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return sock, buf


def read_until(sock: socket.socket, predicate: Any, timeout: float = 10.0) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while not predicate(buf):
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def demux(data: bytes) -> tuple[bytes, bytes]:
    out = {1: b"", 2: b""}
    while len(data) >= 8:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        out[stream] = out.get(stream, b"") + data[8 : 8 + size]
        data = data[8 + size :]
    return out[1], out[2]


def run_detached(daemon: TestDaemon, *args: str) -> str:
    r = daemon.docker("run", "-d", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def wait_exited(daemon: TestDaemon, cid: str, timeout: float = 20.0) -> dict[str, Any]:
    status, body = daemon.api_json("POST", f"/containers/{cid}/wait", timeout=timeout)
    assert status == 200, body
    return body
