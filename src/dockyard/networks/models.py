"""Data shapes shared between the network service and the containers service.

``ContainerNetConfig`` is what the containers service hands over before the
runtime create; ``ContainerNetwork`` is what it gets back (the netns to join,
the generated /etc files to bind in, and the inspect ``NetworkSettings``).
The rest are the records the service keeps in the state database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ContainerNetConfig:
    """A container's networking wishes, in docker's HostConfig/Config vocabulary."""

    container_id: str
    name: str
    hostname: str = ""
    domainname: str = ""
    # HostConfig.NetworkMode: "default"/"bridge"/"host"/"none"/"container:<id>"/<network name or id>
    network_mode: str = "default"
    # NetworkingConfig.EndpointsConfig: {net name: {"Aliases": [...], "IPAMConfig": {"IPv4Address": ...}}}
    endpoints: dict[str, Any] = field(default_factory=dict)
    # HostConfig.PortBindings: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    port_bindings: dict[str, Any] = field(default_factory=dict)
    publish_all: bool = False
    # Config.ExposedPorts: {"80/tcp": {}}
    exposed_ports: dict[str, Any] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    # where hosts / resolv.conf / hostname are written
    files_dir: str = ""
    # for "container:<id>": returns the /proc/<pid>/ns/net path of that container's init
    container_netns_lookup: Callable[[str], str] | None = None


@dataclass
class ContainerNetwork:
    """What the runtime needs: netns to join (None = host's) and the /etc files to bind in."""

    netns_path: str | None
    hosts_path: str
    resolv_conf_path: str
    hostname_path: str
    settings: dict[str, Any]


@dataclass
class NetworkRecord:
    """A network as stored: the docker inspect fields plus the linux bridge name."""

    id: str
    name: str
    driver: str
    created: str
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    bridge: str = ""
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    builtin: bool = False  # the predefined bridge/host/none
    user_subnet: bool = False  # static --ip only works on networks with a user-given subnet
    aux_addresses: dict[str, str] = field(default_factory=dict)  # IPAM AuxiliaryAddresses: kept, never given out
    # IPv6 (only with EnableIPv6): the bridge's second subnet and gateway, dual-stack endpoints
    subnet6: str = ""
    gateway6: str = ""
    ip_range6: str = ""
    user_subnet6: bool = False
    # IPAM Config entries kept as given but not in use (an IPv6 pool on a network without EnableIPv6)
    unused_ipam: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_bridge(self) -> bool:
        return self.driver == "bridge"

    @property
    def is_default_bridge(self) -> bool:
        return self.builtin and self.driver == "bridge"


@dataclass
class Endpoint:
    """One container attached to one bridge network."""

    network_id: str
    container_id: str
    container_name: str
    endpoint_id: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    host_veth: str
    ifname: str
    aliases: list[str] = field(default_factory=list)
    static_ip: str = ""
    dns_names: list[str] = field(default_factory=list)
    driver_opts: dict[str, str] = field(default_factory=dict)  # EndpointConfig.DriverOpts, reported as given
    ip6: str = ""  # the endpoint's IPv6 address on an IPv6-enabled network
    prefixlen6: int = 0
    gateway6: str = ""
    ipam_config: dict[str, Any] = field(default_factory=dict)  # EndpointConfig.IPAMConfig, reported as given
    link_local: list[str] = field(default_factory=list)  # IPAMConfig.LinkLocalIPs, added to the interface
    links: list[str] = field(default_factory=list)  # EndpointConfig.Links ("name:alias"), DNS aliases for it


@dataclass
class PortMapping:
    """One published port: container port/proto to host ip:port."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int

    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"
