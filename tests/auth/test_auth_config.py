"""Daemon flags and daemon.json keys of access control, and where plain TCP is allowed once it is on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auth.tokenkit import write_clients
from dockyard.daemon.config import ConfigError, load


@pytest.fixture
def clients(tmp_path: Any) -> str:
    path = str(tmp_path / "clients.yaml")
    write_clients(path, {"ci": ("pw", ["read"])})
    return path


def test_plain_tcp_on_loopback_only(clients: str) -> None:
    for host in ("tcp://127.0.0.1:2375", "tcp://[::1]:2375", "tcp://localhost:2375", "tcp://127.8.0.1:1"):
        cfg = load(["--auth-clients", clients, "-H", host])
        assert cfg.auth_enabled and cfg.hosts == [host]
    for host in ("tcp://0.0.0.0:2375", "tcp://:2375", "tcp://10.1.2.3:2375"):
        with pytest.raises(ConfigError, match="plain TCP is allowed on loopback"):
            load(["--auth-clients", clients, "-H", host, "--insecure-tcp"])
    with pytest.raises(ConfigError, match="plain TCP is allowed on loopback"):
        load(["--auth-clients", clients, "--auth-token-host", "tcp://0.0.0.0:4180"])
    with pytest.raises(ConfigError, match="without TLS"):  # auth off: loopback still needs TLS or --insecure-tcp
        load(["-H", "tcp://127.0.0.1:2375"])


def test_daemon_json_auth_keys(tmp_path: Any, clients: str) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"auth": {"clients": clients, "allow-socket": False, "token-host":
                                         "tcp://127.0.0.1:4180", "token-ttl": 60}}))
    cfg = load(["--config-file", str(conf)])
    assert (cfg.auth_clients, cfg.auth_allow_socket, cfg.auth_token_host, cfg.auth_token_ttl) == \
        (clients, False, "tcp://127.0.0.1:4180", 60)
    assert load(["--config-file", str(conf), "--auth-allow-socket"]).auth_allow_socket is True
    conf.write_text(json.dumps({"auth": {"clients": clients, "bogus": 1}}))
    with pytest.raises(ConfigError, match="unknown auth key"):
        load(["--config-file", str(conf)])


@pytest.mark.parametrize("argv,message", [
    (["--auth-issuer", "https://i"], "need --auth-clients or --auth-jwks"),
    (["--auth-clients", "/nonexistent/clients.yaml"], "no such directory"),
    (["--auth-clients", "{c}", "--auth-policy", "/nonexistent.yaml"], "no such file"),
    (["--auth-clients", "{c}", "--auth-jwks", "{c}"], "go together"),
    (["--auth-clients", "{c}", "--auth-jwks", "{c}", "--auth-issuer", "https://i"], "needs --auth-audience"),
    (["--auth-clients", "{c}", "--auth-token-ttl", "0"], "positive"),
    (["--auth-clients", "{c}", "--auth-token-host", "127.0.0.1:80"], "expected tcp://"),
])
def test_bad_auth_flags(clients: str, argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load([a.replace("{c}", clients) for a in argv])
