"""A test daemon with access control on: a clients file, an external issuer's JWKS, the API on loopback TCP."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
from typing import Any
from urllib.parse import urlencode

from auth.tokenkit import ExternalIssuer, write_clients
from helpers.daemon import TestDaemon

EXT_AUDIENCE = "dockyard-ci"
CLIENTS = {"ci": ("ci-secret", ["read", "containers"]), "ro": ("ro-secret", ["read"]),
           "root": ("root-secret", ["admin"]), "short": ("short-secret", ["read", "containers"], 1)}


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


class AuthDaemon:
    """The daemon and what a test needs to talk to it: ports, the issuer, token helpers."""

    def __init__(self, extra: list[str] | None = None, token_port: bool = False) -> None:
        self.d = TestDaemon()
        os.makedirs(self.d.tmp, exist_ok=True)
        self.clients_file = os.path.join(self.d.tmp, "clients.yaml")
        write_clients(self.clients_file, CLIENTS)  # type: ignore[arg-type]
        self.ext = ExternalIssuer()
        self.jwks = os.path.join(self.d.tmp, "jwks.json")
        self.ext.write_jwks(self.jwks)
        self.port = free_port()
        self.token_port = free_port() if token_port else self.port
        self.base = f"http://127.0.0.1:{self.port}"
        self.tcp_host = f"tcp://127.0.0.1:{self.port}"
        args = ["--auth-clients", self.clients_file, "--auth-issuer", self.ext.issuer, "--auth-jwks", self.jwks,
                "--auth-audience", EXT_AUDIENCE, "-H", self.tcp_host]
        if token_port:
            args += ["--auth-token-host", f"tcp://127.0.0.1:{self.token_port}"]
        self.d.extra_args = args + list(extra or [])

    def start(self) -> AuthDaemon:
        self.d.start()
        return self

    # -- raw HTTP over loopback TCP ------------------------------------------------------------------------
    def http(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             port: int | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=60)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def bearer(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        status, headers, data = self.http(method, path, body, {"Authorization": f"Bearer {token}"})
        return status, headers, json.loads(data) if data.strip() else None

    def token_response(self, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        status, _, data = self.http("POST", "/token", urlencode(form).encode(), hdrs, port=self.token_port)
        return status, json.loads(data)

    def token(self, client: str, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", "client_id": client, "client_secret": CLIENTS[client][0]}
        if scope:
            form["scope"] = scope
        status, doc = self.token_response(form)
        assert status == 200, doc
        return str(doc["access_token"])

    def curl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60)

    def container_ids(self) -> list[str]:
        """Every container, asked over the unix socket (file permissions only: no token)."""
        status, _, body = self.d.api("GET", "/containers/json?all=1")
        assert status == 200, body
        return sorted(c["Id"] for c in json.loads(body))
