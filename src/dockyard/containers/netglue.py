"""The containers service's side of networking: builds the request for NetworkService and keeps what it answered.

Without a network service (a stripped-down daemon) containers get a private, loopback-only namespace and
minimal /etc files, so the lifecycle still works.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from dockyard.containers.spec import NetFiles
from dockyard.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService
    from dockyard.containers.state import Container

log = logging.getLogger("dockyard.containers")


class NetGlue:
    def __init__(self, networks: Any, containers: ContainerService) -> None:
        self.networks = networks
        self.containers = containers
        if networks is not None:
            if hasattr(networks, "set_live_containers"):
                networks.set_live_containers(containers.live_ids)
            if hasattr(networks, "set_container_lookup"):
                networks.set_container_lookup(self._lookup)
            if hasattr(networks, "set_settings_listener"):
                networks.set_settings_listener(self._settings_changed)

    def _lookup(self, ref: str) -> tuple[str, str]:
        c = self.containers.get(ref)
        return c.id, c.name

    def _settings_changed(self, cid: str, settings: dict[str, Any]) -> None:
        """connect/disconnect/update_ports changed a container's networks: inspect shows it at once."""
        try:
            c = self.containers.get(cid)
        except NotFound:
            return
        if c.id != cid:
            return
        c.network_settings = dict(settings or {})
        self.containers.save(c)

    def configure(self, c: Container) -> None:
        """At create: the network service checks and records the container's networks, so inspect lists them
        and connect/disconnect work before the first start (docker-compose 1.x relies on both)."""
        fn = getattr(self.networks, "configure_container", None) if self.networks is not None else None
        if fn is not None:
            endpoints = dict((c.networking_config or {}).get("EndpointsConfig") or {})
            c.network_settings = dict(fn(c.id, c.host_config.get("NetworkMode") or "bridge", endpoints) or {})

    def update_ports(self, c: Container, add: dict[str, Any], remove: list[str]) -> None:
        """Publish/unpublish ports of a running container (the network service checks and programs them)."""
        if self.networks is None or not hasattr(self.networks, "update_ports"):
            raise InvalidParameter("published ports cannot be changed: no network service")
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

    def prepare(self, c: Container, state_dir: str) -> NetFiles:
        mode = c.host_config.get("NetworkMode") or "bridge"
        if self.networks is None or not hasattr(self.networks, "prepare_container"):
            return self._fallback(c, state_dir, mode)
        from dockyard.networks.models import ContainerNetConfig

        hc, cfg = c.host_config, c.config
        req = ContainerNetConfig(
            container_id=c.id, name=c.name, hostname=cfg.get("Hostname") or c.id[:12],
            domainname=cfg.get("Domainname") or "", network_mode=mode,
            endpoints=dict((c.networking_config or {}).get("EndpointsConfig") or {}),
            port_bindings=dict(hc.get("PortBindings") or {}), publish_all=bool(hc.get("PublishAllPorts")),
            exposed_ports=dict(cfg.get("ExposedPorts") or {}), dns=list(hc.get("Dns") or []),
            dns_search=list(hc.get("DnsSearch") or []), dns_options=list(hc.get("DnsOptions") or []),
            extra_hosts=list(hc.get("ExtraHosts") or []), files_dir=state_dir, container_netns_lookup=self.netns_of)
        result = self.networks.prepare_container(req)
        c.network_settings = dict(result.settings or {})
        return NetFiles(netns_path=result.netns_path, join_host=result.netns_path is None,
                        hosts_path=result.hosts_path, resolv_conf_path=result.resolv_conf_path,
                        hostname_path=result.hostname_path)

    def _fallback(self, c: Container, state_dir: str, mode: str) -> NetFiles:
        hostname = c.config.get("Hostname") or c.id[:12]
        if mode == "host":
            hostname = socket.gethostname()
        files = {"hostname": f"{hostname}\n",
                 "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                 "resolv.conf": _host_resolv()}
        for name, text in files.items():
            with open(os.path.join(state_dir, name), "w") as f:
                f.write(text)
        netns = None
        if mode.startswith("container:"):
            netns = self.netns_of(mode.split(":", 1)[1])
        c.network_settings = {"Networks": {}, "Ports": {}, "SandboxKey": "", "IPAddress": "", "Gateway": ""}
        return NetFiles(netns_path=netns, join_host=mode == "host", hosts_path=os.path.join(state_dir, "hosts"),
                        resolv_conf_path=os.path.join(state_dir, "resolv.conf"),
                        hostname_path=os.path.join(state_dir, "hostname"))

    def release(self, c: Container) -> None:
        if self.networks is None or not hasattr(self.networks, "release_container"):
            return
        try:
            self.networks.release_container(c.id)
        except Exception:  # noqa: BLE001 - a failed release must not block the exit/remove path
            log.exception("releasing the network of %s failed", c.id)

    def forget(self, c: Container) -> None:
        """Container removed: the network service releases and drops everything it kept about it."""
        fn = getattr(self.networks, "remove_container", None) if self.networks is not None else None
        if fn is None:
            self.release(c)
            return
        try:
            fn(c.id)
        except Exception:  # noqa: BLE001 - a failed release must not block the removal
            log.exception("forgetting the network of %s failed", c.id)

    def renamed(self, c: Container) -> None:
        fn = getattr(self.networks, "rename_container", None) if self.networks is not None else None
        if fn is not None:
            fn(c.id, c.name)

    def shutdown(self) -> None:
        if self.networks is not None and hasattr(self.networks, "shutdown"):
            self.networks.shutdown()


def _host_resolv() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            lines = [ln for ln in f if not (ln.startswith("nameserver") and ln.split()[1:2] and
                                            ln.split()[1].startswith(("127.", "::1")))]
        return "".join(lines)
    except OSError:
        return ""
