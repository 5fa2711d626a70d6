"""Daemon configuration: command-line flags merged over daemon.json, dockerd's key names where they apply.

A flag given on the command line wins over the file; the file wins over the built-in default. Keys that only
make sense for dockerd (storage-opts, registry mirrors…) are accepted and ignored so one daemon.json serves both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"
DEFAULT_SOCKET = "unix:///run/dockyard.sock"
DEFAULT_LOG_OPTS = {"max-size": "10m", "max-file": "3"}
DEFAULT_DATA_ROOT = "/var/lib/dockyard"
RUNTIMES = ("dockyard", "runc", "crun")


class ConfigError(Exception):
    """A flag or daemon.json value the daemon cannot start with."""


@dataclass
class DaemonConfig:
    data_root: str = DEFAULT_DATA_ROOT
    exec_root: str = "/run/dockyard"
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    pidfile: str = "/run/dockyard.pid"
    bridge: str = ""  # "" until load(): default_bridge(data root)
    bip: str | None = None
    default_runtime: str = "dockyard"
    runtimes: dict[str, Any] = field(default_factory=dict)
    log_level: str = "info"
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LOG_OPTS))
    # the log-opts daemon.json or --log-opt asked for (without the built-in rotation): what docker merges
    # into a container's HostConfig.LogConfig, so the default rotation applies without showing in every config
    log_opts_given: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = "dockyard"
    iptables: bool = True
    ip6tables: bool = True  # rules for the IPv6 side of dual-stack networks (dockerd's default since 27)
    ipv6: bool = False  # daemon.json "ipv6": the default bridge gets an IPv6 subnet too
    fixed_cidr_v6: str | None = None  # daemon.json "fixed-cidr-v6": that subnet (else a unique-local /64)
    live_restore: bool = True
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    insecure_tcp: bool = False
    group: str = "dockyard"
    resource_prefix: str = ""  # "" until load(): default_prefix(data root)
    config_file: str | None = None
    cgroup_favordynmods: bool = True
    builder_gc: bool = True  # daemon.json "builder": {"gc": {"enabled": …, "defaultKeepStorage": "20GB"}}
    builder_keep_storage: int = 20 * 1000 ** 3
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    registry_certs_dirs: list[str] = field(default_factory=lambda: ["/etc/dockyard/certs.d", "/etc/docker/certs.d"])
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    max_download_attempts: int = 5
    # access control (docs/auth.md): on when a clients file or an external issuer's JWKS is given
    auth_clients: str | None = None
    auth_policy: str | None = None
    auth_allow_socket: bool = True
    auth_issuer: str | None = None
    auth_jwks: str | None = None
    auth_audience: str | None = None
    auth_token_host: str | None = None
    auth_token_ttl: int = 3600

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_clients or self.auth_jwks)
    max_json_body: int = 1 << 20  # request bounds, see api/bodycheck.py
    max_header_bytes: int = 64 << 10
    max_json_depth: int = 100
    max_labels: int = 1000
    max_label_bytes: int = 64 << 10
    firewall_check_interval: int = 60  # seconds between checks that our iptables chains and rules are intact


def _bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard daemon", description="Run the dockyard engine daemon")
    p.add_argument("--data-root", "-g")
    p.add_argument("--exec-root")
    p.add_argument("-H", "--host", action="append", dest="hosts")
    p.add_argument("--config-file")
    p.add_argument("--pidfile", "-p")
    p.add_argument("--bridge", "-b")
    p.add_argument("--bip")
    p.add_argument("--default-runtime", choices=RUNTIMES)
    p.add_argument("--log-level", "-l", choices=("debug", "info", "warn", "error", "fatal"))
    p.add_argument("--log-driver")
    p.add_argument("--log-opt", action="append", dest="log_opt_list", default=[])
    p.add_argument("--cgroup-parent")
    p.add_argument("--iptables", type=_bool, nargs="?", const=True)
    p.add_argument("--ip6tables", type=_bool, nargs="?", const=True)
    p.add_argument("--ipv6", type=_bool, nargs="?", const=True)
    p.add_argument("--fixed-cidr-v6")
    p.add_argument("--live-restore", type=_bool, nargs="?", const=True)
    p.add_argument("--no-live-restore", action="store_true")
    p.add_argument("--tls", action="store_true", default=None)
    p.add_argument("--tlsverify", action="store_true", default=None)
    p.add_argument("--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--insecure-tcp", action="store_true")
    p.add_argument("--group", "-G")
    p.add_argument("-D", "--debug", action="store_true")
    p.add_argument("--cgroup-favordynmods", type=_bool, nargs="?", const=True,
                   help="turn on cgroup2's favordynmods (faster container start; default true)")
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries_flag", default=[],
                   help="a registry (host[:port] or CIDR) reached over plain http or without verifying its certificate")
    p.add_argument("--registry-mirror", action="append", dest="registry_mirrors_flag", default=[])
    p.add_argument("--registry-certs-dir", action="append", dest="registry_certs_dirs_flag", default=[],
                   help="a certs.d directory (HOST:PORT/ca.crt, client.cert, client.key); replaces the defaults "
                        "/etc/dockyard/certs.d and /etc/docker/certs.d")
    p.add_argument("--max-concurrent-downloads", type=int)
    p.add_argument("--max-concurrent-uploads", type=int)
    p.add_argument("--max-download-attempts", type=int)
    p.add_argument("--resource-prefix", help="prefix of every network link and firewall chain this daemon makes "
                                             "(default: derived from the data root)")
    p.add_argument("--auth-clients", help="OAuth2 clients file: turns on bearer tokens for the API")
    p.add_argument("--auth-policy", help="policy file of what non-admin clients may create (default: built in)")
    p.add_argument("--auth-allow-socket", type=_bool, nargs="?", const=True,
                   help="the unix socket's file permissions are its only check (default true)")
    p.add_argument("--auth-issuer", help="also accept tokens of this external OAuth2/OIDC issuer")
    p.add_argument("--auth-jwks", help="the external issuer's keys (JWKS file, verified offline)")
    p.add_argument("--auth-audience", help="the audience the external issuer's tokens must name")
    p.add_argument("--auth-token-host", help="serve POST /token on this address (default: the API's)")
    p.add_argument("--auth-token-ttl", type=int, help="lifetime of issued tokens in seconds (default 3600)")
    return p


_FILE_KEYS = {
    "data-root": "data_root", "graph": "data_root", "exec-root": "exec_root", "hosts": "hosts",
    "pidfile": "pidfile", "bridge": "bridge", "bip": "bip", "default-runtime": "default_runtime",
    "runtimes": "runtimes", "log-level": "log_level", "log-driver": "log_driver", "log-opts": "log_opts",
    "cgroup-parent": "cgroup_parent", "iptables": "iptables", "live-restore": "live_restore", "tls": "tls",
    "tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert", "tlskey": "tlskey",
    "group": "group", "cgroup-favordynmods": "cgroup_favordynmods",
    "insecure-registries": "insecure_registries", "registry-mirrors": "registry_mirrors",
    "max-concurrent-downloads": "max_concurrent_downloads", "max-concurrent-uploads": "max_concurrent_uploads",
    "max-download-attempts": "max_download_attempts",
    "resource-prefix": "resource_prefix",
    "max-json-body": "max_json_body", "max-header-bytes": "max_header_bytes", "max-json-depth": "max_json_depth",
    "max-labels": "max_labels", "max-label-bytes": "max_label_bytes",
    "firewall-check-interval": "firewall_check_interval",
    "ip6tables": "ip6tables", "ipv6": "ipv6", "fixed-cidr-v6": "fixed_cidr_v6",
}
_POSITIVE_INTS = ("max_json_body", "max_header_bytes", "max_json_depth", "max_labels", "max_label_bytes")


def _validate_ipv6(cfg: DaemonConfig) -> None:
    """fixed-cidr-v6 must be an IPv6 network (host bits allowed, as dockerd takes it)."""
    if not cfg.fixed_cidr_v6:
        return
    import ipaddress

    try:
        net = ipaddress.ip_network(cfg.fixed_cidr_v6, strict=False)
    except ValueError:
        raise ConfigError(f"invalid fixed-cidr-v6: {cfg.fixed_cidr_v6}") from None
    if net.version != 6:
        raise ConfigError(f"invalid fixed-cidr-v6: {cfg.fixed_cidr_v6} is not an IPv6 subnet")


def _builder_gc(cfg: DaemonConfig, builder: Any) -> None:
    """dockerd's ``builder.gc`` keys: whether the build cache is collected and the size it is kept under."""
    if not isinstance(builder, dict) or not isinstance(builder.get("gc"), dict):
        return
    gc = builder["gc"]
    if "enabled" in gc:
        cfg.builder_gc = bool(gc["enabled"])
    if gc.get("defaultKeepStorage") is not None:
        cfg.builder_keep_storage = _human_size(str(gc["defaultKeepStorage"]))


def _human_size(text: str) -> int:
    """docker's ``units.FromHumanSize``: decimal units (``20GB`` = 20·10⁹ bytes), a bare number is bytes."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?\s*", text)
    if not m:
        raise ConfigError(f"invalid builder.gc.defaultKeepStorage: {text!r}")
    power = " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1000 ** power)


_AUTH_KEYS = {"clients": "auth_clients", "policy": "auth_policy", "allow-socket": "auth_allow_socket",
              "issuer": "auth_issuer", "jwks": "auth_jwks", "audience": "auth_audience",
              "token-host": "auth_token_host", "token-ttl": "auth_token_ttl"}


def _auth_from_file(cfg: DaemonConfig, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"unable to configure the daemon with file {path}: 'auth' must be an object")
    for key, v in value.items():
        if key not in _AUTH_KEYS:
            raise ConfigError(f"unable to configure the daemon with file {path}: unknown auth key {key!r}")
        setattr(cfg, _AUTH_KEYS[key], v)


def default_prefix(data_root: str) -> str:
    """The resource prefix of a daemon on ``data_root``: ``dy`` for the default root, else ``dy`` and four hex
    digits of the root's hash, so two daemons on one host never name a link or chain alike, and one daemon
    finds its own again after every restart."""
    root = os.path.abspath(data_root)
    if root == DEFAULT_DATA_ROOT:
        return "dy"
    return "dy" + hashlib.sha256(root.encode()).hexdigest()[:4]


def default_bridge(data_root: str) -> str:
    """The default bridge's name: ``dockyard0`` for the default root, else named after the resource prefix."""
    if os.path.abspath(data_root) == DEFAULT_DATA_ROOT:
        return "dockyard0"
    return default_prefix(data_root) + "0"


def load(argv: list[str]) -> DaemonConfig:
    """Parse flags, read daemon.json (explicit --config-file must exist), validate hosts and TLS."""
    args = build_parser().parse_args(argv)
    cfg = DaemonConfig()
    path = args.config_file or (DEFAULT_CONFIG_FILE if os.path.exists(DEFAULT_CONFIG_FILE) else None)
    if path:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"unable to configure the daemon with file {path}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"unable to configure the daemon with file {path}: not a JSON object")
        _builder_gc(cfg, data.get("builder"))
        for key, value in data.items():
            if key == "auth":
                _auth_from_file(cfg, value, path)
                continue
            attr = _FILE_KEYS.get(key)
            if attr is None:
                continue  # dockerd-only keys (storage-opts, registry-mirrors, …) are ignored
            if attr == "log_opts":
                merged = dict(DEFAULT_LOG_OPTS)
                merged.update({str(k): str(v) for k, v in value.items()})
                cfg.log_opts_given = {str(k): str(v) for k, v in value.items()}
                value = merged
            setattr(cfg, attr, value)
        cfg.config_file = path
    simple = {"data_root": args.data_root, "exec_root": args.exec_root, "pidfile": args.pidfile,
              "bridge": args.bridge, "bip": args.bip, "default_runtime": args.default_runtime,
              "log_level": "debug" if args.debug else args.log_level, "log_driver": args.log_driver,
              "cgroup_parent": args.cgroup_parent, "iptables": args.iptables, "live_restore": args.live_restore,
              "tls": args.tls, "tlsverify": args.tlsverify, "tlscacert": args.tlscacert,
              "tlscert": args.tlscert, "tlskey": args.tlskey, "group": args.group,
              "resource_prefix": args.resource_prefix, "cgroup_favordynmods": args.cgroup_favordynmods,
              "max_concurrent_downloads": args.max_concurrent_downloads,
              "max_concurrent_uploads": args.max_concurrent_uploads,
              "max_download_attempts": args.max_download_attempts,
              "auth_clients": args.auth_clients, "auth_policy": args.auth_policy,
              "auth_allow_socket": args.auth_allow_socket, "auth_issuer": args.auth_issuer,
              "auth_jwks": args.auth_jwks, "auth_audience": args.auth_audience,
              "auth_token_host": args.auth_token_host, "auth_token_ttl": args.auth_token_ttl,
              "ip6tables": args.ip6tables, "ipv6": args.ipv6, "fixed_cidr_v6": args.fixed_cidr_v6}
    for attr, value in simple.items():
        if value is not None:
            setattr(cfg, attr, value)
    if args.hosts:
        cfg.hosts = list(args.hosts)
    for opt in args.log_opt_list:
        k, _, v = opt.partition("=")
        cfg.log_opts[k] = v
        cfg.log_opts_given[k] = v
    cfg.insecure_registries = [*cfg.insecure_registries, *args.insecure_registries_flag]
    cfg.registry_mirrors = [*cfg.registry_mirrors, *args.registry_mirrors_flag]
    if args.registry_certs_dirs_flag:
        cfg.registry_certs_dirs = list(args.registry_certs_dirs_flag)
    _validate_registry(cfg)
    _validate_ipv6(cfg)
    if args.no_live_restore:
        cfg.live_restore = False
    cfg.insecure_tcp = bool(args.insecure_tcp)
    if cfg.default_runtime not in RUNTIMES and cfg.default_runtime not in cfg.runtimes:
        raise ConfigError(f"default runtime {cfg.default_runtime!r} is not configured")
    if cfg.log_driver not in ("json-file", "local", "none"):
        raise ConfigError(f"logging driver {cfg.log_driver!r} is not supported")
    cfg.data_root = os.path.abspath(cfg.data_root)
    cfg.exec_root = os.path.abspath(cfg.exec_root)
    for attr in _POSITIVE_INTS:
        value = getattr(cfg, attr)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"invalid value for {attr.replace('_', '-')}: {value!r} (a positive integer)")
    cfg.resource_prefix = cfg.resource_prefix or default_prefix(cfg.data_root)
    cfg.bridge = cfg.bridge or default_bridge(cfg.data_root)
    if not (cfg.resource_prefix.isalnum() and cfg.resource_prefix.isascii() and len(cfg.resource_prefix) <= 8):
        raise ConfigError(f"invalid resource prefix {cfg.resource_prefix!r}: up to 8 letters or digits")
    validate_hosts(cfg)
    validate_auth(cfg)
    return cfg


def _validate_registry(cfg: DaemonConfig) -> None:
    """dockerd's checks of the registry options (its messages), so a bad daemon.json stops the start."""
    for m in cfg.registry_mirrors:
        if not isinstance(m, str) or not m.startswith(("http://", "https://")):
            raise ConfigError(f"invalid mirror: unsupported scheme {m!r} (use http:// or https://)")
    for r in cfg.insecure_registries:
        if not isinstance(r, str) or "://" in r:
            raise ConfigError(f"insecure registry {r} should not contain '://'")
    for key in ("max_concurrent_downloads", "max_concurrent_uploads", "max_download_attempts"):
        v = getattr(cfg, key)
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"invalid {key.replace('_', '-')} value: {v!r} (must be 1 or more)")


def is_loopback(host: str) -> bool:
    """A tcp:// address bound to the loopback interface only (plain TCP is allowed there when auth is on)."""
    import ipaddress

    addr = tcp_address(host)[0]
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def validate_auth(cfg: DaemonConfig) -> None:
    if not cfg.auth_enabled:
        if cfg.auth_issuer or cfg.auth_token_host or cfg.auth_policy:
            raise ConfigError("--auth-issuer, --auth-policy and --auth-token-host need --auth-clients or --auth-jwks")
        return
    for attr in ("auth_clients", "auth_policy", "auth_jwks"):
        if isinstance(getattr(cfg, attr), str):
            setattr(cfg, attr, os.path.abspath(getattr(cfg, attr)))
    if bool(cfg.auth_issuer) != bool(cfg.auth_jwks):
        raise ConfigError("--auth-issuer and --auth-jwks go together")
    if cfg.auth_jwks and not cfg.auth_audience:
        raise ConfigError("--auth-jwks needs --auth-audience (the audience the issuer's tokens must name)")
    if not isinstance(cfg.auth_token_ttl, int) or isinstance(cfg.auth_token_ttl, bool) or cfg.auth_token_ttl <= 0:
        raise ConfigError("--auth-token-ttl must be a positive number of seconds")
    if not isinstance(cfg.auth_allow_socket, bool):
        raise ConfigError("auth allow-socket must be true or false")
    for f in (cfg.auth_policy, cfg.auth_jwks):
        if f is not None and not os.path.isfile(f):
            raise ConfigError(f"auth: {f}: no such file")
    # the clients file may be missing (no clients yet: `dockyard auth client add` makes it), its directory not
    if cfg.auth_clients and not os.path.isdir(os.path.dirname(cfg.auth_clients)):
        raise ConfigError(f"auth: {os.path.dirname(cfg.auth_clients)}: no such directory")
    tcp = [h for h in cfg.hosts if h.startswith("tcp://")]
    if cfg.auth_token_host:
        if not cfg.auth_token_host.startswith("tcp://") or not cfg.auth_token_host.rpartition(":")[2].isdigit():
            raise ConfigError(f"invalid --auth-token-host {cfg.auth_token_host!r}: expected tcp://ADDR:PORT")
        tcp.append(cfg.auth_token_host)
    if not (cfg.tls or cfg.tlsverify):
        for h in tcp:
            if not is_loopback(h):
                raise ConfigError(f"refusing to listen on {h} without TLS: with access control on, plain TCP is "
                                  "allowed on loopback addresses only (tokens must not cross a network in clear)")


def validate_hosts(cfg: DaemonConfig) -> None:
    """Only unix sockets, or TCP with TLS (plain TCP only when the user insisted with --insecure-tcp)."""
    if not cfg.hosts:
        cfg.hosts = [DEFAULT_SOCKET]
    for h in cfg.hosts:
        if h.startswith("unix://"):
            if not h[len("unix://"):]:
                raise ConfigError(f"invalid host {h!r}")
        elif h.startswith("tcp://"):
            host, _, port = h[len("tcp://"):].rpartition(":")
            if not port.isdigit():
                raise ConfigError(f"invalid host {h!r}: a port is required")
            if cfg.tlsverify or cfg.tls:
                if not (cfg.tlscert and cfg.tlskey):
                    raise ConfigError("TLS needs --tlscert and --tlskey")
                if cfg.tlsverify and not cfg.tlscacert:
                    raise ConfigError("--tlsverify needs --tlscacert")
            elif not cfg.insecure_tcp and not (cfg.auth_enabled and is_loopback(h)):
                raise ConfigError(f"refusing to listen on {h} without TLS: use --tlsverify --tlscacert --tlscert "
                                  "--tlskey, or --insecure-tcp if you really want an unauthenticated root shell "
                                  "on the network")
        else:
            raise ConfigError(f"invalid host {h!r}: only unix:// and tcp:// are supported")


def tcp_address(host: str) -> tuple[str, int]:
    addr, _, port = host[len("tcp://"):].rpartition(":")
    return (addr.strip("[]") or "0.0.0.0", int(port))
