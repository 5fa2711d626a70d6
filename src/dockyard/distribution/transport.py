"""Where and how to reach a registry: endpoints (mirrors first for docker.io), https or http, and TLS settings
from ``certs.d`` — the rules dockerd applies.

* https by default; plain http is tried (after https) only for insecure registries: names or CIDRs given by
  ``insecure-registries`` / ``--insecure-registry``, and 127.0.0.0/8 always. For those https certificates are
  not verified (docker's behaviour).
* ``certs.d/HOST:PORT/`` (and ``certs.d/HOST/``) in each configured directory: ``*.crt`` are extra CAs,
  ``*.cert`` with the matching ``*.key`` a client certificate.
* ``docker.io`` names go to each registry mirror first, then to ``registry-1.docker.io``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass, field

from ..errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
DEFAULT_REGISTRY_HOST = "registry-1.docker.io"
DEFAULT_INDEX_SERVER = "https://index.docker.io/v1/"
DEFAULT_CERTS_DIRS = ("/etc/dockyard/certs.d", "/etc/docker/certs.d")
LOOPBACK_CIDR = "127.0.0.0/8"


@dataclass
class RegistrySettings:
    """The daemon's registry configuration (daemon.json keys in comments)."""

    insecure_registries: list[str] = field(default_factory=list)  # insecure-registries
    mirrors: list[str] = field(default_factory=list)  # registry-mirrors
    certs_dirs: list[str] = field(default_factory=lambda: list(DEFAULT_CERTS_DIRS))
    max_concurrent_downloads: int = 3  # max-concurrent-downloads
    max_concurrent_uploads: int = 5  # max-concurrent-uploads
    max_download_attempts: int = 5  # max-download-attempts

    def validate(self) -> None:
        for m in self.mirrors:
            if not m.startswith(("http://", "https://")):
                raise InvalidParameter(f"invalid mirror: unsupported scheme \"{m.split('://')[0]}\" in \"{m}\""
                                       if "://" in m else f"invalid mirror: no scheme specified for \"{m}\"")
        for entry in self.insecure_registries:
            if "://" in entry:
                raise InvalidParameter(f"insecure registry {entry} should not contain '://'")
        if self.max_concurrent_downloads < 1 or self.max_concurrent_uploads < 1:
            raise InvalidParameter("max-concurrent-downloads and max-concurrent-uploads must be at least 1")


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a registry: ``base`` is ``scheme://host[:port]``."""

    base: str
    host: str  # host[:port] as the user wrote it, the key for certs.d and credentials
    secure: bool  # certificates are verified
    mirror: bool = False

    @property
    def scheme(self) -> str:
        return self.base.split("://", 1)[0]


def registry_host(domain: str) -> str:
    """The host a reference's domain is served from (docker.io → registry-1.docker.io)."""
    return DEFAULT_REGISTRY_HOST if domain in (DEFAULT_DOMAIN, "index.docker.io") else domain


class Transport:
    """Endpoint selection and TLS contexts for one daemon's settings (contexts cached per host)."""

    def __init__(self, settings: RegistrySettings) -> None:
        settings.validate()
        self.settings = settings
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._names: set[str] = set()
        for entry in [*settings.insecure_registries, LOOPBACK_CIDR]:
            try:
                self._nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry)
        self._contexts: dict[tuple[str, bool, tuple[tuple[str, float], ...]], ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._working: dict[str, str] = {}  # host -> the scheme that answered last time

    # -- security -------------------------------------------------------------------------------------
    def is_insecure(self, host: str) -> bool:
        """docker's ``isSecureIndex`` inverted: listed by name, or an address (or resolved address) in a CIDR."""
        if host in self._names:
            return True
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        hostname = hostname.strip("[]")
        if hostname in self._names:
            return True
        try:
            addrs = [ipaddress.ip_address(hostname)]
        except ValueError:
            try:
                infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
            except OSError:
                return False
            addrs = [ipaddress.ip_address(i[4][0]) for i in infos]
        return any(a in net for a in addrs for net in self._nets)

    def endpoints(self, domain: str) -> list[Endpoint]:
        """The endpoints to try for a reference's domain, in order."""
        out: list[Endpoint] = []
        if domain in (DEFAULT_DOMAIN, "index.docker.io"):
            for m in self.settings.mirrors:
                base = m.rstrip("/")
                mhost = base.split("://", 1)[1].split("/", 1)[0]
                out.append(Endpoint(base, mhost, base.startswith("https://") and not self.is_insecure(mhost),
                                    mirror=True))
            out.append(Endpoint(f"https://{DEFAULT_REGISTRY_HOST}", DEFAULT_REGISTRY_HOST, True))
            return out
        if self.is_insecure(domain):
            plain = Endpoint(f"http://{domain}", domain, False)
            if self._working.get(domain) == "http":
                return [plain]  # it answered plain http before: docker would fail TLS and fall back anyway
            return [Endpoint(f"https://{domain}", domain, False), plain]
        return [Endpoint(f"https://{domain}", domain, True)]

    def remember(self, ep: Endpoint) -> None:
        """An endpoint spoke HTTP with us: try its scheme first next time (no TLS attempt at a plain registry)."""
        self._working[ep.host] = ep.scheme

    # -- TLS --------------------------------------------------------------------------------------------
    def cert_dirs(self, host: str) -> list[str]:
        out = []
        for root in self.settings.certs_dirs:
            for name in (host, host.rsplit(":", 1)[0]) if ":" in host else (host,):
                d = os.path.join(root, name)
                if os.path.isdir(d) and d not in out:
                    out.append(d)
        return out

    def _certs_signature(self, host: str) -> tuple[tuple[str, float], ...]:
        sig: list[tuple[str, float]] = []
        for d in self.cert_dirs(host):
            for name in sorted(os.listdir(d)):
                try:
                    sig.append((os.path.join(d, name), os.stat(os.path.join(d, name)).st_mtime))
                except OSError:
                    pass
        return tuple(sig)

    def ssl_context(self, ep: Endpoint) -> ssl.SSLContext:
        """The TLS context for an endpoint, made again when its certs.d files change (docker reads them for
        every pull and push)."""
        key = (ep.host, ep.secure, self._certs_signature(ep.host))
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                return ctx
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            if not ep.secure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            for d in self.cert_dirs(ep.host):
                for name in sorted(os.listdir(d)):
                    path = os.path.join(d, name)
                    if name.endswith(".crt"):
                        ctx.load_verify_locations(path)
                    elif name.endswith(".cert"):
                        keyfile = path[:-len(".cert")] + ".key"
                        if not os.path.exists(keyfile):
                            raise InvalidParameter(f"missing key {os.path.basename(keyfile)} for client "
                                                   f"certificate {name}. CA certificates must use the extension "
                                                   ".crt")
                        ctx.load_cert_chain(path, keyfile)
                    elif name.endswith(".key") and not os.path.exists(path[:-len(".key")] + ".cert"):
                        raise InvalidParameter(f"missing client certificate {name[:-4]}.cert for key {name}")
            self._contexts[key] = ctx
            return ctx
