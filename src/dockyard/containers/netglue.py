"""The containers service's side of networking: builds the request for NetworkService and keeps what it answered.

What it needs of the network service is ``containers/ports.py``'s ``NetworkBackend``; what the network service
needs of the containers (lookups, settings changes) it gets from ``ContainerDirectory``, not from here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dockyard.containers.spec import NetFiles
from dockyard.errors import InvalidParameter, NotFound
from dockyard.networks.models import ContainerNetConfig

if TYPE_CHECKING:
    from dockyard.containers.directory import ContainerDirectory
    from dockyard.containers.ports import NetworkBackend
    from dockyard.containers.state import Container

log = logging.getLogger("dockyard.containers")


class NetGlue:
    """Builds the network service's requests from a container's record and keeps what it answered.

    ``networks`` is required (a daemon always has one; tests pass a double): nothing here probes for methods.
    """

    def __init__(self, networks: NetworkBackend, containers: ContainerDirectory) -> None:
        self.networks = networks
        self.containers = containers

    def configure(self, c: Container) -> None:
        """At create: the network service checks and records the container's networks, so inspect lists them
        and connect/disconnect work before the first start (docker-compose 1.x relies on both)."""
        endpoints = dict((c.networking_config or {}).get("EndpointsConfig") or {})
        c.network_settings = dict(self.networks.configure_container(
            c.id, c.host_config.get("NetworkMode") or "bridge", endpoints) or {})

    def update_ports(self, c: Container, add: dict[str, Any], remove: list[str]) -> None:
        """Publish/unpublish ports of a running container (the network service checks and programs them)."""
        settings = self.networks.update_ports(c.id, add, remove)
        c.network_settings = dict(settings or {})

    def netns_of(self, ref: str) -> str:
        """/proc/<pid>/ns/net of a running container's init (for --network container:<id>)."""
        c = self.containers.get(ref)
        if not c.state.Running or not c.state.Pid:
            raise InvalidParameter(f"cannot join network of a non running container: {c.id}")
        return f"/proc/{c.state.Pid}/ns/net"

    def validate(self, host_config: dict[str, Any]) -> None:
        mode = host_config.get("NetworkMode") or "bridge"
        if mode.startswith("container:"):
            try:
                self.containers.get(mode.split(":", 1)[1])
            except NotFound:
                raise NotFound(f"No such container: {mode.split(':', 1)[1]}") from None

    def prepare(self, c: Container, state_dir: str, link_hosts: list[str] | None = None) -> NetFiles:
        """``link_hosts``: /etc/hosts entries of legacy links ("names:ip"), after --add-host's."""
        mode = c.host_config.get("NetworkMode") or "bridge"
        hc, cfg = c.host_config, c.config
        req = ContainerNetConfig(
            container_id=c.id, name=c.name, hostname=cfg.get("Hostname") or c.id[:12],
            domainname=cfg.get("Domainname") or "", network_mode=mode,
            endpoints=dict((c.networking_config or {}).get("EndpointsConfig") or {}),
            port_bindings=dict(hc.get("PortBindings") or {}), publish_all=bool(hc.get("PublishAllPorts")),
            exposed_ports=dict(cfg.get("ExposedPorts") or {}), dns=list(hc.get("Dns") or []),
            dns_search=list(hc.get("DnsSearch") or []), dns_options=list(hc.get("DnsOptions") or []),
            extra_hosts=list(hc.get("ExtraHosts") or []) + list(link_hosts or []), files_dir=state_dir,
            container_netns_lookup=self.netns_of)
        result = self.networks.prepare_container(req)
        c.network_settings = dict(result.settings or {})
        return NetFiles(netns_path=result.netns_path, join_host=result.netns_path is None,
                        hosts_path=result.hosts_path, resolv_conf_path=result.resolv_conf_path,
                        hostname_path=result.hostname_path)

    def release(self, c: Container) -> None:
        try:
            self.networks.release_container(c.id)
        except Exception:  # noqa: BLE001 - a failed release must not block the exit/remove path
            log.exception("releasing the network of %s failed", c.id)

    def forget(self, c: Container) -> None:
        """Container removed: the network service releases and drops everything it kept about it."""
        try:
            self.networks.remove_container(c.id)
        except Exception:  # noqa: BLE001 - a failed release must not block the removal
            log.exception("forgetting the network of %s failed", c.id)

    def renamed(self, c: Container) -> None:
        self.networks.rename_container(c.id, c.name)

    def shutdown(self) -> None:
        self.networks.shutdown()


