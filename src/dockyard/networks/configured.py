"""The networks a container is configured for while it does not run (docker's NetworkSettings.Networks).

Docker records a container's networks at create, from HostConfig.NetworkMode and EndpointsConfig, and
``network connect``/``disconnect`` of a stopped (or never started) container only edit that record;
the next start attaches exactly what it lists. Clients depend on it: docker-compose 1.x disconnects
and reconnects a created container (to set its aliases) before starting it. Mixed into
NetworkService next to Attacher, which consults the record in prepare_container.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dockyard.errors import Forbidden, InvalidParameter, NotFound
from dockyard.networks import ipam6
from dockyard.networks.store import ConfiguredNetworks

if TYPE_CHECKING:
    from dockyard.networks.models import NetworkRecord
    from dockyard.networks.store import NetworkStore

# docker's runconfig errors for connecting a container whose mode does not allow a second network
ERR_SHARED = "container sharing network namespace with another container or host cannot be connected to any other network"
ERR_NONE = "container cannot be connected to multiple networks with one of the networks in private (none) mode"

_STOPPED_TOP: dict[str, Any] = {
    "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": False,
    "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
    "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
}


def _mode_network_ref(mode: str) -> str:
    return "bridge" if mode in ("", "default", "bridge") else mode



def requested_address(net: NetworkRecord, ecfg: dict[str, Any]) -> str:
    """The static IPv4 address an endpoint config asks for ("" for none), refused where docker refuses it."""
    requested = str((ecfg.get("IPAMConfig") or {}).get("IPv4Address") or "").strip()
    if requested and net.is_default_bridge:
        raise InvalidParameter("user specified IP address is supported on user defined networks only")
    if requested and not net.user_subnet:
        raise InvalidParameter("user specified IP address is supported only when connecting to networks "
                               "with user configured subnets")
    return requested

def requested_address6(net: NetworkRecord, ecfg: dict[str, Any]) -> str:
    """The static IPv6 address an endpoint config asks for ("" for none), checked as docker checks it:
    only on a network with a user-configured IPv6 subnet (with or without EnableIPv6)."""
    requested = str((ecfg.get("IPAMConfig") or {}).get("IPv6Address") or "").strip()
    if not requested:
        return ""
    if net.is_default_bridge:
        raise InvalidParameter("user specified IP address is supported on user defined networks only")
    if not net.user_subnet6:
        raise InvalidParameter("user specified IP address is supported only when connecting to networks "
                               "with user configured subnets")
    if ":" not in requested:
        raise InvalidParameter(f"invalid IPv6 address: {requested}")
    ipam6.parse_v6(requested)
    return requested


def link_local_ips(ecfg: dict[str, Any]) -> list[tuple[str, int]]:
    """IPAMConfig.LinkLocalIPs to add to the interface, checked."""
    return ipam6.link_local_addresses(str(v) for v in ((ecfg.get("IPAMConfig") or {}).get("LinkLocalIPs") or []))


def requested_mac(ecfg: dict[str, Any]) -> str:
    """The MAC address an endpoint config asks for ("" for none), in docker's lower-case form."""
    mac = str(ecfg.get("MacAddress") or "").strip().lower()
    if mac and not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac):
        raise InvalidParameter(f"invalid MAC address: {mac}")
    if mac and int(mac[:2], 16) & 1:
        raise InvalidParameter(f"invalid MAC address: {mac} is a multicast address")
    return mac


class Configured:
    """configure_container and the not-running halves of connect/disconnect/settings."""

    store: NetworkStore

    def _find(self, ref: str) -> NetworkRecord:
        raise NotImplementedError

    # -- the record ------------------------------------------------------------------------------

    def configure_container(self, container_id: str, network_mode: str,
                            endpoints: dict[str, Any] | None) -> dict[str, Any]:
        """At create: check the networks exist, record them, return inspect's NetworkSettings."""
        conf = self._seed(network_mode, endpoints)
        self.store.put_configured(container_id, conf)
        return self._configured_settings(conf)

    def _seed(self, network_mode: str, endpoints: dict[str, Any] | None) -> ConfiguredNetworks:
        """The mode's network first, then EndpointsConfig's.

        A network that does not exist is kept by name: like docker, create accepts it and the start
        fails with ``network X not found`` unless it has been created by then.
        """
        mode = network_mode or "bridge"
        if mode.startswith("container:"):
            return ConfiguredNetworks(mode=mode, networks=[])
        nets: list[tuple[str, str, dict[str, Any]]] = []
        for ref, ecfg in [(_mode_network_ref(mode), {}), *(endpoints or {}).items()]:
            ref = _mode_network_ref(ref) if ref == "default" else ref
            try:
                net = self._find(ref)
                item = (net.id, net.name, dict(ecfg or {}))
            except NotFound:
                item = ("", ref, dict(ecfg or {}))
            same = [k for k, (i, n, _c) in enumerate(nets) if (i, n) == item[:2] or (i and i == item[0])]
            if not same:
                nets.append(item)
            elif ecfg:
                nets[same[0]] = item
        return ConfiguredNetworks(mode=mode, networks=nets)

    def _configured_for_start(self, container_id: str, network_mode: str,
                              endpoints: dict[str, Any] | None) -> ConfiguredNetworks:
        """The record prepare_container attaches; seeded now for a container created without one."""
        conf = self.store.configured(container_id)
        if conf is not None and conf.mode:
            return conf
        seeded = self._seed(network_mode, endpoints)
        for item in conf.networks if conf is not None else []:  # connects made before any record existed
            if item[0] not in seeded.ids():
                seeded.networks.append(item)
        self.store.put_configured(container_id, seeded)
        return seeded

    def _wanted_from(self, conf: ConfiguredNetworks) -> list[tuple[NetworkRecord, dict[str, Any]]]:
        """Bridge networks of the record, the mode's network first (its ports and top-level address)."""
        wanted: list[tuple[NetworkRecord, dict[str, Any]]] = []
        for net_id, name, ecfg in conf.networks:
            net = self.store.network(net_id) if net_id else None
            if net is None:
                net = self._find(name)  # created since, or NotFound (docker's start error)
            if net.is_bridge:
                wanted.append((net, dict(ecfg or {})))
        try:
            mode_net = self._find(_mode_network_ref(conf.mode)).id
        except NotFound:
            mode_net = ""
        wanted.sort(key=lambda w: w[0].id != mode_net)
        return wanted

    def _remember(self, container_id: str, net: NetworkRecord, ecfg: dict[str, Any] | None) -> None:
        """A connect of a running container also lasts for its next start."""
        conf = self.store.configured(container_id) or ConfiguredNetworks(mode="", networks=[])
        conf.networks = [t for t in conf.networks if t[0] != net.id] + [(net.id, net.name, dict(ecfg or {}))]
        self.store.put_configured(container_id, conf)

    def _forget_network(self, container_id: str, net: NetworkRecord) -> bool:
        """Drop ``net`` from the record; False when it was not in it."""
        conf = self.store.configured(container_id)
        if conf is None or net.id not in conf.ids():
            return False
        conf.networks = [t for t in conf.networks if t[0] != net.id]
        self.store.put_configured(container_id, conf)
        return True

    # -- not running -----------------------------------------------------------------------------

    def _connect_configured(self, container_id: str, net: NetworkRecord, ecfg: dict[str, Any]) -> None:
        """connect of a container that does not run: edit the record (docker's updateNetworkSettings)."""
        conf = self.store.configured(container_id) or ConfiguredNetworks(mode="", networks=[])
        if conf.mode == "host" or conf.mode.startswith("container:"):
            raise Forbidden(ERR_SHARED)
        if net.id in conf.ids():
            return  # docker keeps the existing configuration and answers success
        for net_id, _name, _cfg in conf.networks:
            other = self.store.network(net_id)
            if other is not None and other.driver == "null":
                raise Forbidden(ERR_NONE)
        requested_address(net, ecfg)
        requested_address6(net, ecfg)
        link_local_ips(ecfg)
        requested_mac(ecfg)
        conf.networks.append((net.id, net.name, dict(ecfg)))
        self.store.put_configured(container_id, conf)

    def _disconnect_configured(self, container_id: str, net: NetworkRecord) -> None:
        """disconnect of a container that does not run: drop the network from the record."""
        if not self._forget_network(container_id, net):
            raise Forbidden(f"container {container_id} is not connected to the network {net.name}")

    def configured_settings(self, container_id: str) -> dict[str, Any] | None:
        """NetworkSettings of a container that does not run (None when nothing is recorded for it)."""
        conf = self.store.configured(container_id)
        return self._configured_settings(conf) if conf is not None else None

    def _configured_settings(self, conf: ConfiguredNetworks) -> dict[str, Any]:
        networks: dict[str, Any] = {}
        for net_id, name, ecfg in conf.networks:
            net = self.store.network(net_id)
            networks[net.name if net is not None else name] = {
                "IPAMConfig": ecfg.get("IPAMConfig") or None, "Links": ecfg.get("Links") or None,
                "Aliases": ecfg.get("Aliases") or None, "MacAddress": str(ecfg.get("MacAddress") or "").lower(),
                "DriverOpts": ecfg.get("DriverOpts"),
                "GwPriority": 0, "NetworkID": net_id, "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": None,
            }
        return {**_STOPPED_TOP, "Ports": {}, "Networks": networks}
