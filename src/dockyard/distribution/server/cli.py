"""``dockyard registry serve`` and ``dockyard registry gc``: the registry's own process entry."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import ssl
import sys
from typing import Any

from .config import ConfigError, ServeOptions, add_serve_flags, load_file, options_from

USAGE = """Usage:  dockyard registry COMMAND

Run or maintain an OCI distribution registry

Commands:
  serve       Serve a registry on the local content store
  gc          Remove blobs no manifest references
"""


def _listen(addr: str) -> socket.socket:
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit():
        raise ConfigError(f"invalid address {addr!r}: host:port expected")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, int(port)))
    except OSError as e:
        s.close()
        raise ConfigError(f"listen tcp {addr}: {e.strerror}") from None
    s.listen(1024)
    s.set_inheritable(True)
    return s


def _build_app(o: ServeOptions) -> Any:
    from .app import RegistryApp, Settings, token_path
    from .auth import AccessPolicy, AccessRule, Authenticator, Htpasswd, TokenConfig, TokenSigner
    from .ratelimit import RateLimiter
    from .store import RegistryStore

    store = RegistryStore(o.root)
    htpasswd = Htpasswd(o.htpasswd) if o.htpasswd else None
    token = None
    if o.token_key and o.token_realm and o.token_service and o.token_issuer:
        token = TokenConfig(o.token_realm, o.token_service, o.token_issuer, TokenSigner(o.token_key),
                            o.token_expiration)
    rules = [AccessRule(str(r.get("account", "*")), str(r.get("name", "*")), tuple(r.get("actions") or ()))
             for r in o.token_access if isinstance(r, dict)]
    auth = Authenticator(htpasswd, token, AccessPolicy(rules), o.basic_realm)
    settings = Settings(read_only=o.read_only, delete_enabled=o.delete_enabled, headers=o.headers,
                        upload_purge_age=o.upload_purge_age, upload_purge_interval=o.upload_purge_interval,
                        token_path=token_path(o.token_realm or "") if token and token.signer.private is not None else None)
    proxy = None
    if o.proxy:
        from .proxy import RemoteRegistry

        proxy = RemoteRegistry(o.proxy, store, o.proxy_username, o.proxy_password)
    store.purge_uploads(o.upload_purge_age)
    return RegistryApp(store, auth, RateLimiter(o.rate, o.burst), settings, proxy)


def serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="dockyard registry serve", description="Serve an OCI distribution registry")
    add_serve_flags(p)
    args = p.parse_args(argv)
    try:
        o = options_from(args)
        os.makedirs(o.root, exist_ok=True)
        app = _build_app(o)
        sock = _listen(o.addr)
    except (ConfigError, OSError, ValueError) as e:
        sys.stderr.write(f"dockyard registry: {e}\n")
        return 1
    from gunicorn.app.base import BaseApplication

    level = {"warn": "warning"}.get(o.log_level, o.log_level)
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg: dict[str, Any] = {
        "bind": [f"fd://{sock.fileno()}"], "workers": o.workers, "worker_class": "gthread", "threads": o.threads,
        "keepalive": 75, "timeout": 120, "graceful_timeout": 10, "preload_app": True, "loglevel": level,
        "control_socket_disable": True, "proc_name": "dockyard-registry", "errorlog": "-",
        "accesslog": "-" if level == "debug" else None, "limit_request_line": 8190,
    }
    if o.tls_cert:
        cfg.update(certfile=o.tls_cert, keyfile=o.tls_key)
        if o.tls_client_ca:
            cfg.update(ca_certs=o.tls_client_ca, cert_reqs=ssl.CERT_REQUIRED)

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for k, v in cfg.items():
                self.cfg.set(k, v)

        def load(self) -> Any:
            return app

    host, port = sock.getsockname()[:2]
    scheme = "https" if o.tls_cert else "http"
    sys.stderr.write(f"dockyard registry listening on {scheme}://{host}:{port} (root {o.root})\n")
    sys.stderr.flush()
    _Server().run()
    return 0


def gc(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="dockyard registry gc", description="Remove blobs no manifest references")
    p.add_argument("--config", help="a config.yml in distribution's shape (for storage.filesystem.rootdirectory)")
    p.add_argument("--root", help="storage root directory")
    p.add_argument("-d", "--dry-run", action="store_true", help="only print what would be removed")
    p.add_argument("--grace", default="1h", help="keep blobs written or used this recently (default 1h)")
    args = p.parse_args(argv)
    from .config import parse_duration
    from .gc import collect
    from .store import RegistryStore

    o = ServeOptions()
    try:
        if args.config:
            load_file(args.config, o)
        if args.root:
            o.root = args.root
        grace = parse_duration(args.grace)
    except ConfigError as e:
        sys.stderr.write(f"dockyard registry gc: {e}\n")
        return 1
    if not os.path.isdir(o.root):
        sys.stderr.write(f"dockyard registry gc: {o.root}: no such directory\n")
        return 1
    collect(RegistryStore(o.root), dry_run=args.dry_run, grace=grace, out=sys.stdout)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 1
    if argv[0] == "serve":
        return serve(argv[1:])
    if argv[0] == "gc":
        return gc(argv[1:])
    sys.stderr.write(f"dockyard registry: unknown command {argv[0]!r}\n\n{USAGE}")
    return 1
