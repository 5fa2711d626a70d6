"""The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf, as dockerd writes them."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from dockyard.errors import InvalidParameter

EMBEDDED_DNS = "127.0.0.11"
FALLBACK_DNS = ["8.8.8.8", "8.8.4.4"]

_HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


@dataclass
class HostResolv:
    """The parts of a resolv.conf we care about."""

    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> HostResolv:
    r = HostResolv()
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            r.nameservers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            r.search = parts[1:]
        elif parts[0] == "options":
            r.options += parts[1:]
    return r


def read_host_resolv(path: str = "/etc/resolv.conf") -> HostResolv:
    try:
        with open(path) as f:
            return parse_resolv_conf(f.read())
    except OSError:
        return HostResolv()


def is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def parse_extra_host(entry: str, gateway: str) -> tuple[str, str]:
    """"name:ip" or "name=ip" (ip may be host-gateway) → (ip, name)."""
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    if not name or not ip:
        raise InvalidParameter(f"invalid argument \"{entry}\" for \"--add-host\" flag")
    if ip == "host-gateway":
        if not gateway:
            raise InvalidParameter("unable to derive the IP value for host-gateway")
        ip = gateway
    ip = ip.strip("[]")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IP address in add-host: \"{ip}\"") from None
    return ip, name


def hosts_text(hostname: str, domainname: str, addresses: list[str], extra: list[tuple[str, str]],
               aliases: list[str] | None = None) -> str:
    """/etc/hosts: localhost lines, --add-host entries, then this container's addresses."""
    lines = [_HOSTS_HEADER]
    for ip, name in extra:
        lines.append(f"{ip}\t{name}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for ip in addresses:
        lines.append(f"{ip}\t{names}\n")
    return "".join(lines)


def resolv_text(*, embedded: bool, host: HostResolv, dns: list[str], dns_search: list[str],
                dns_options: list[str], host_mode: bool = False) -> str:
    """resolv.conf: 127.0.0.11 on user networks; the host's servers (minus loopback ones) otherwise."""
    if embedded:
        servers = [EMBEDDED_DNS]
    elif dns:
        servers = list(dns)
    elif host_mode:
        servers = list(host.nameservers)
    else:
        servers = [s for s in host.nameservers if not is_loopback(s)] or list(FALLBACK_DNS)
    search = dns_search if dns_search else host.search
    options = list(dns_options) if dns_options else list(host.options)
    if embedded and not any(o.startswith("ndots:") for o in options):
        options.append("ndots:0")
    out = [f"nameserver {s}\n" for s in servers]
    if search and search != ["."]:
        out.append("search " + " ".join(search) + "\n")
    if options:
        out.append("options " + " ".join(options) + "\n")
    return "".join(out)


def _write(path: str, data: bytes) -> None:
    """Create or truncate ``path`` and write it. Only used before the container exists (nothing reads
    or bind-mounts the files yet), so no temp file and rename; no fsync either: the files are
    regenerated on every start, so a crash can lose nothing that is not rewritten anyway."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_files(files_dir: str, *, hostname: str, hosts: str, resolv: str) -> tuple[str, str, str]:
    """Write the three files before the container is created; returns (hosts, resolv.conf, hostname) paths."""
    hosts_path = f"{files_dir}/hosts"
    resolv_path = f"{files_dir}/resolv.conf"
    hostname_path = f"{files_dir}/hostname"
    _write(hosts_path, hosts.encode())
    _write(resolv_path, resolv.encode())
    _write(hostname_path, (hostname + "\n").encode())
    return hosts_path, resolv_path, hostname_path
