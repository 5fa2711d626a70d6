"""The server's options: flags, and a ``--config`` YAML file in the shape of distribution's config.yml.

Flags given on the command line win over the file. Keys read from the file: ``http.addr``,
``http.tls.{certificate,key,clientcas}``, ``http.headers``, ``auth.htpasswd.{path,realm}``,
``auth.token.{realm,service,issuer,key,rootcertbundle,expiration,access}`` (``access``: rules of account, name
pattern and actions, also accepted as ``auth.access`` for Basic auth, where a refusal is 403 DENIED),
``storage.filesystem.rootdirectory``, ``storage.delete.enabled``, ``storage.maintenance.readonly.enabled``,
``storage.maintenance.uploadpurging.{age,interval}``, ``proxy.{remoteurl,username,password}``, ``log.level``
and our own ``http.ratelimit.{rate,burst}``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_ADDR = "127.0.0.1:5000"
DEFAULT_ROOT = "/var/lib/dockyard-registry"
DEFAULT_RATE = 500.0  # requests per second per client address, bursts of twice that


class ConfigError(Exception):
    pass


@dataclass
class ServeOptions:
    addr: str = DEFAULT_ADDR
    root: str = DEFAULT_ROOT
    htpasswd: str | None = None
    basic_realm: str = "Registry Realm"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    token_realm: str | None = None
    token_service: str | None = None
    token_issuer: str | None = None
    token_key: str | None = None
    token_expiration: int = 300
    token_access: list[dict[str, Any]] = field(default_factory=list)
    read_only: bool = False
    delete_enabled: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list)
    proxy: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = None
    log_level: str = "info"
    rate: float = DEFAULT_RATE
    burst: float | None = None
    upload_purge_age: float = 24 * 3600.0
    upload_purge_interval: float = 3600.0
    workers: int = 2
    threads: int = 32


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(v: Any) -> float:
    """A Go duration ("168h", "1h30m", "10s") or a number of seconds."""
    if isinstance(v, int | float):
        return float(v)
    s = str(v).strip()
    parts = _DURATION.findall(s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise ConfigError(f"invalid duration {v!r}")
    return sum(float(a) * _UNITS[b] for a, b in parts)


def _get(doc: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(p)
    return doc


def load_file(path: str, o: ServeOptions) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a mapping expected at the top")
    if (v := _get(doc, "http", "addr")) is not None:
        v = str(v)
        o.addr = "0.0.0.0" + v if v.startswith(":") else v
    o.tls_cert = _get(doc, "http", "tls", "certificate") or o.tls_cert
    o.tls_key = _get(doc, "http", "tls", "key") or o.tls_key
    cas = _get(doc, "http", "tls", "clientcas")
    if cas:
        o.tls_client_ca = cas[0] if isinstance(cas, list) else str(cas)
    for k, vals in (_get(doc, "http", "headers") or {}).items():
        for v in vals if isinstance(vals, list) else [vals]:
            o.headers.append((str(k), str(v)))
    if (v := _get(doc, "http", "ratelimit", "rate")) is not None:
        o.rate = float(v)
    if (v := _get(doc, "http", "ratelimit", "burst")) is not None:
        o.burst = float(v)
    o.htpasswd = _get(doc, "auth", "htpasswd", "path") or o.htpasswd
    o.basic_realm = _get(doc, "auth", "htpasswd", "realm") or o.basic_realm
    tok = _get(doc, "auth", "token")
    if isinstance(tok, dict):
        o.token_realm = tok.get("realm") or o.token_realm
        o.token_service = tok.get("service") or o.token_service
        o.token_issuer = tok.get("issuer") or o.token_issuer
        o.token_key = tok.get("key") or tok.get("rootcertbundle") or o.token_key
        if tok.get("expiration") is not None:
            o.token_expiration = int(parse_duration(tok["expiration"]))
        o.token_access = list(tok.get("access") or [])
    if isinstance(_get(doc, "auth", "access"), list):  # ours: the same rules for Basic auth
        o.token_access = list(_get(doc, "auth", "access"))
    o.root = _get(doc, "storage", "filesystem", "rootdirectory") or o.root
    o.delete_enabled = bool(_get(doc, "storage", "delete", "enabled")) or o.delete_enabled
    o.read_only = bool(_get(doc, "storage", "maintenance", "readonly", "enabled")) or o.read_only
    purge = _get(doc, "storage", "maintenance", "uploadpurging")
    if isinstance(purge, dict):
        if purge.get("age") is not None:
            o.upload_purge_age = parse_duration(purge["age"])
        if purge.get("interval") is not None:
            o.upload_purge_interval = parse_duration(purge["interval"])
    o.proxy = _get(doc, "proxy", "remoteurl") or o.proxy
    o.proxy_username = _get(doc, "proxy", "username") or o.proxy_username
    o.proxy_password = _get(doc, "proxy", "password") or o.proxy_password
    o.log_level = str(_get(doc, "log", "level") or o.log_level)


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--config", help="a config.yml in distribution's shape")
    a("--addr", help=f"address to listen on (default {DEFAULT_ADDR})")
    a("--root", help=f"storage root directory (default {DEFAULT_ROOT})")
    a("--htpasswd", help="htpasswd file of bcrypt entries: Basic auth (or the token endpoint's users)")
    a("--tls-cert", help="TLS certificate")
    a("--tls-key", help="TLS key")
    a("--tls-client-ca", help="require client certificates signed by this CA (mutual TLS)")
    a("--token-realm", help="Bearer auth: the token endpoint's URL (served here when --token-key is a private key)")
    a("--token-service", help="Bearer auth: the service name tokens are issued for")
    a("--token-issuer", help="Bearer auth: the issuer name")
    a("--token-key", help="Bearer auth: PEM private key (RSA or EC P-256) signing tokens, or a certificate to verify them")
    a("--read-only", action="store_true", default=None, help="refuse pushes and deletes")
    a("--delete-enabled", action="store_true", default=None, help="allow deleting manifests and blobs")
    a("--proxy", help="pull-through cache of this remote registry URL")
    a("--rate-limit", type=float, help=f"requests per second per client, 0 for none (default {DEFAULT_RATE:g})")
    a("--upload-timeout", help="purge uploads untouched this long (default 24h)")
    a("--workers", type=int, help="worker processes (default 2)")
    a("--threads", type=int, help="threads per worker (default 32)")
    a("--log-level", help="debug, info, warn, error")


def options_from(args: argparse.Namespace) -> ServeOptions:
    o = ServeOptions()
    if args.config:
        load_file(args.config, o)
    for flag in ("addr", "root", "htpasswd", "tls_cert", "tls_key", "tls_client_ca", "token_realm", "token_service",
                 "token_issuer", "token_key", "read_only", "delete_enabled", "proxy", "workers", "threads",
                 "log_level"):
        v = getattr(args, flag)
        if v is not None:
            setattr(o, flag, v)
    if args.rate_limit is not None:
        o.rate = args.rate_limit
    if args.upload_timeout is not None:
        o.upload_purge_age = parse_duration(args.upload_timeout)
        o.upload_purge_interval = min(o.upload_purge_interval, max(o.upload_purge_age / 4, 1.0))
    if bool(o.tls_cert) != bool(o.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    if o.tls_client_ca and not o.tls_cert:
        raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
    token = (o.token_realm, o.token_service, o.token_issuer, o.token_key)
    if any(token) and not all(token):
        raise ConfigError("Bearer auth needs --token-realm, --token-service, --token-issuer and --token-key")
    if o.workers < 1 or o.threads < 1:
        raise ConfigError("--workers and --threads must be at least 1")
    return o
