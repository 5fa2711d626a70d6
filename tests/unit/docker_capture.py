"""A tiny logging Engine API server on a unix socket: records what a client sends to /containers/create.

Used to compare the JSON the official docker CLI sends with what `dockyard create` sends.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

from helpers.http import read_request

FAKE_ID = "0123456789ab" * 5 + "0123"


class CaptureServer:
    """Answers /_ping, /containers/create and exec creation; remembers their bodies."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.bodies: list[dict[str, Any]] = []
        self.exec_bodies: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                try:
                    method, target, _headers, body = read_request(f)
                except EOFError:
                    return
                self.requests.append((method, target))
                path = target.split("?")[0]
                if path.endswith("/_ping"):
                    self._reply(conn, 200, b"" if method == "HEAD" else b"OK", "text/plain")
                elif path.endswith("/containers/create"):
                    self.bodies.append(json.loads(body))
                    self._reply(conn, 201, json.dumps({"Id": FAKE_ID, "Warnings": []}).encode())
                elif path.endswith("/exec") and method == "POST":
                    self.exec_bodies.append(json.loads(body))
                    self._reply(conn, 201, json.dumps({"Id": FAKE_ID}).encode())
                elif path.endswith("/json") and "/containers/" in path:
                    self._reply(conn, 200, json.dumps({"Id": FAKE_ID, "State": {"Running": True},
                                                       "Config": {"Tty": False}}).encode())
                else:
                    self._reply(conn, 404, b'{"message":"not here"}')
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def _reply(self, conn: socket.socket, status: int, body: bytes, ctype: str = "application/json") -> None:
        head = (f"HTTP/1.1 {status} X\r\nApi-Version: 1.47\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        conn.sendall(head.encode() + body)

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
