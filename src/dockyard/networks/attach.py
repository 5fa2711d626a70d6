"""Attaching containers: namespaces, endpoints, published ports, /etc files, DNS answers.

Mixed into NetworkService (which owns the store, netlink, firewall, port allocator and
DNS server); kept apart so each module stays readable.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from dockyard.networks import bridge as links
from dockyard.networks import etcfiles, ipam, ipam6, netns, rtnl
from dockyard.networks.configured import (
    Configured,
    link_local_ips,
    requested_address,
    requested_address6,
    requested_mac,
)
from dockyard.networks.firewall import FirewallError
from dockyard.networks.models import (
    ContainerNetConfig,
    ContainerNetwork,
    Endpoint,
    NetworkRecord,
    PortMapping,
)
from dockyard.networks.portmap import (
    by_family,
    parse_port_key,
    parse_publish,
    port_tuples,
    requests_from,
    settings_ports,
)
from dockyard.networks.store import ContainerState
from dockyard.util import failpoint
from dockyard.util.ids import new_id

if TYPE_CHECKING:
    from dockyard.networks.bridge import Netlink
    from dockyard.networks.dns import DNSServer
    from dockyard.networks.firewall import Firewall
    from dockyard.networks.nspool import NamespacePool
    from dockyard.networks.portmap import PortAllocator
    from dockyard.networks.store import NetworkStore

_alloc_lock = threading.Lock()


def _write_in_place(path: str, text: str) -> None:
    """Rewrite a file keeping its inode: a running container has it bind-mounted."""
    with open(path, "w") as f:
        f.write(text)


def _ipam_config(ep: Endpoint) -> dict[str, Any] | None:
    """EndpointSettings.IPAMConfig as the user gave it (IPv4Address, IPv6Address, LinkLocalIPs)."""
    cfg = {k: v for k, v in ep.ipam_config.items() if v}
    if ep.static_ip:
        cfg["IPv4Address"] = ep.static_ip
    return cfg or None


class Attacher(Configured):
    """prepare_container / release_container / connect / disconnect / update_ports / DNS lookups."""

    store: NetworkStore
    netlink: Netlink
    firewall: Firewall
    firewall6: Firewall
    ports: PortAllocator
    dns: DNSServer
    nspool: NamespacePool
    netns_dir: str
    prefix: str
    _fw_lock: threading.RLock

    def heal_firewall(self) -> bool:
        raise NotImplementedError

    def _find(self, ref: str) -> NetworkRecord:
        raise NotImplementedError

    def _resolve_container(self, ref: str) -> tuple[str, str]:
        raise NotImplementedError

    def _publish(self, action: str, net: NetworkRecord, attrs: dict[str, str] | None = None) -> None:
        raise NotImplementedError

    def host_upstreams(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def _settings_changed(self, container_id: str) -> None:
        raise NotImplementedError

    # -- container start and stop ---------------------------------------------------------------

    def prepare_container(self, cfg: ContainerNetConfig) -> ContainerNetwork:
        """Everything a container's networking needs, made before the runtime creates it.

        The hot path makes no subprocess and no pyroute2 call: the namespace comes ready from the
        pool (loopback up, a netlink socket and the DNS listener sockets open inside); each veth pair
        is one netlink request from the host, configured through that socket.
        """
        if self.store.container(cfg.container_id) is not None:
            self.release_container(cfg.container_id)
        os.makedirs(cfg.files_dir, exist_ok=True)
        mode = cfg.network_mode or "default"
        conf = self._configured_for_start(cfg.container_id, mode, cfg.endpoints)
        hostname = cfg.hostname or cfg.container_id[:12]
        st = ContainerState(container_id=cfg.container_id, name=cfg.name.lstrip("/"), hostname=hostname,
                            domainname=cfg.domainname, mode="bridge", netns_path=None, files_dir=cfg.files_dir,
                            exposed=dict(cfg.exposed_ports or {}), dns=list(cfg.dns or []),
                            dns_search=list(cfg.dns_search or []), dns_options=list(cfg.dns_options or []),
                            extra_hosts=list(cfg.extra_hosts or []))
        if mode == "host":
            st.mode = "host"
            self.store.put_container(st)
            return self._result(st)
        if mode.startswith("container:"):
            return self._prepare_shared(cfg, st, mode.split(":", 1)[1])
        st.netns_path = os.path.join(self.netns_dir, cfg.container_id)
        st.mode = "none" if mode == "none" else "bridge"
        wanted = self._wanted_from(conf) if st.mode == "bridge" else []
        if wanted:
            st.primary_network = wanted[0][0].id
        self.store.put_container(st)
        ns_rt: rtnl.RtSocket | None = None
        dns_socks: list[socket.socket] = []
        try:
            netns.remove(st.netns_path)
            want_dns = any(not net.builtin for net, _ in wanted)
            ns_rt, dns_socks = self.nspool.take(st.netns_path, want_dns)
            for net, ecfg in wanted:
                self._attach_endpoint(st, net, ecfg, ns_rt)
            if wanted:
                self._publish_ports(cfg, st, wanted[0][0])
            if dns_socks:
                self.dns.adopt(st.container_id, dns_socks)
                dns_socks = []
            self._write_files(st, fresh=True)
            return self._result(st)
        except BaseException:
            for sock in dns_socks:
                sock.close()
            self.release_container(cfg.container_id)
            raise
        finally:
            if ns_rt is not None:
                ns_rt.close()

    def _publish_ports(self, cfg: ContainerNetConfig, st: ContainerState, primary: NetworkRecord) -> None:
        """Hold the host ports and program their rules (nothing at all, no iptables, without any)."""
        reqs = requests_from(cfg.port_bindings, cfg.publish_all, cfg.exposed_ports, dual_stack=bool(primary.subnet6))
        if reqs and not primary.internal:
            ep0 = self.store.endpoints(network_id=primary.id, container_id=st.container_id)[0]
            st.ports = self.ports.reserve(st.container_id, reqs, f"{st.name} ({ep0.endpoint_id})")
            with self._fw_lock:  # the record and the rules change together for the firewall check
                self.store.put_container(st)
                self._program_ports(st)

    def _prepare_shared(self, cfg: ContainerNetConfig, st: ContainerState,
                        other_ref: str) -> ContainerNetwork:
        if cfg.container_netns_lookup is None:
            raise InvalidParameter("container network mode needs the other container's namespace")
        ns_path = cfg.container_netns_lookup(other_ref)
        other = None
        for o in self.store.containers():
            if other_ref in (o.container_id, o.name) or o.container_id.startswith(other_ref):
                other = o
                break
        st.mode, st.shared_with = "container", other.container_id if other else other_ref
        self.store.put_container(st)
        if other is not None:
            files = (os.path.join(other.files_dir, n) for n in ("hosts", "resolv.conf", "hostname"))
            hosts, resolv, hostname = files
            return ContainerNetwork(ns_path, hosts, resolv, hostname, self._settings_for(st, ns_path))
        self._write_files(st, fresh=True)
        net = self._result(st)
        net.netns_path = ns_path
        return net

    def release_container(self, container_id: str) -> None:
        """Undo prepare_container: links, rules, ports, DNS listener, namespace, records. Idempotent.

        Only published ports have per-container rules, and only while the container's record exists
        (they are removed before it; startup flushes our chains and re-adds live ones), so a release
        without ports runs no iptables. Host veths are deleted in the background (see bridge.Netlink);
        a crash before that is cleaned up by startup's reconcile, which removes links no record owns.
        """
        if not container_id or "/" in container_id:
            return
        st = self.store.container(container_id)
        self.dns.remove_listener(container_id)
        eps = self.store.endpoints(container_id=container_id)
        with self._fw_lock:  # the rules and the record go together for the firewall check
            if st is not None and st.ports:
                self._unprogram_ports(st, eps)
            self.ports.release(container_id)
            ns_path = st.netns_path if st is not None and st.mode in ("bridge", "none") else None
            netns.remove(ns_path or os.path.join(self.netns_dir, container_id))
            for ep in eps:
                self.netlink.delete_link_later(ep.host_veth, ep.network_id, ep.ip)
            self.store.delete_container_all(container_id)
        for ep in eps:
            net = self.store.network(ep.network_id)
            if net is not None:
                self._publish("disconnect", net, {"container": container_id})

    def forget_container(self, container_id: str) -> None:
        """The container was removed: drop the connections kept for its next start."""
        self.release_container(container_id)
        self.store.delete_configured(container_id)

    def remove_container(self, container_id: str) -> None:
        """Alias of ``forget_container`` (the name the containers service calls)."""
        self.forget_container(container_id)

    def rename_container(self, container_id: str, new_name: str) -> None:
        """Keep DNS names and inspect data in step with ``docker rename``."""
        new_name = new_name.lstrip("/")
        st = self.store.container(container_id)
        if st is not None:
            old = st.name
            st.name = new_name
            self.store.put_container(st)
            for ep in self.store.endpoints(container_id=container_id):
                ep.container_name = new_name
                if ep.dns_names:
                    ep.dns_names = [new_name if n == old else n for n in ep.dns_names]
                self.store.put_endpoint(ep)

    # -- endpoints ------------------------------------------------------------------------------

    def _attach_endpoint(self, st: ContainerState, net: NetworkRecord, ecfg: dict[str, Any],
                         ns_rt: rtnl.RtSocket | None = None) -> Endpoint:
        assert st.netns_path
        requested = requested_address(net, ecfg)
        requested6 = requested_address6(net, ecfg)
        link_local = link_local_ips(ecfg)
        pool = ipam.make_pool(net.subnet, net.gateway, net.ip_range)
        pool6 = ipam6.make_pool6(net.subnet6, net.gateway6, net.ip_range6) if net.subnet6 else None
        existing = self.store.endpoints(container_id=st.container_id)
        with _alloc_lock:
            on_net = self.store.endpoints(network_id=net.id)
            used = [ep.ip for ep in on_net] + list(net.aux_addresses.values())
            cooling = self.netlink.cooling(net.id)
            label = f"{net.name} ({net.id[:12]})"
            try:  # addresses whose old veth is still being deleted are handed out last
                ip = ipam.allocate(pool, used + sorted(cooling), requested, label)
            except Conflict:
                if not cooling:
                    raise
                self.netlink.drain()  # a static address (a restart) or a full pool: wait for the old links
                ip = ipam.allocate(pool, used, requested, label)
            ip6 = ipam6.allocate6(pool6, [e.ip6 for e in on_net], requested6, label) if pool6 else ""
            aliases = [a for a in (ecfg.get("Aliases") or []) if a]
            dns_names = [] if net.is_default_bridge else [st.name, *aliases, st.container_id[:12]]
            ep = Endpoint(network_id=net.id, container_id=st.container_id, container_name=st.name,
                          endpoint_id=new_id(), ip=ip, prefixlen=pool.prefixlen, gateway=net.gateway,
                          mac=requested_mac(ecfg) or ipam.mac_for(ip),
                          host_veth=links.link_name(self.prefix, "v", os.urandom(8).hex()),
                          ifname=f"eth{len(existing)}", aliases=aliases, static_ip=requested,
                          driver_opts={str(k): str(v) for k, v in (ecfg.get("DriverOpts") or {}).items()},
                          dns_names=list(dict.fromkeys(dns_names)),
                          ip6=ip6, prefixlen6=pool6.prefixlen if pool6 else 0,
                          gateway6=net.gateway6 if pool6 else "",
                          ipam_config=dict(ecfg.get("IPAMConfig") or {}),
                          link_local=[a for a, _p in link_local],
                          links=[str(v) for v in (ecfg.get("Links") or []) if v])
            self.store.put_endpoint(ep)
        failpoint.hit("network.endpoint.recorded")  # restart rolls back: no link, no endpoint
        extra: list[tuple[str, int, str | None]] = []
        if ip6 and pool6:
            extra.append((ip6, pool6.prefixlen, None if net.internal else net.gateway6))
        extra += [(a, plen, None) for a, plen in link_local]
        try:
            self.netlink.attach(net.bridge, ep.host_veth, st.netns_path, ep.ifname, ip, pool.prefixlen,
                                None if net.internal else net.gateway, ep.mac,
                                int(net.options.get("com.docker.network.driver.mtu", "1500")), ns_rt,
                                tuple(extra))
        except BaseException:
            self.store.delete_endpoint(net.id, st.container_id)
            raise
        self._publish("connect", net, {"container": st.container_id})
        return ep

    def _user_networks(self, container_id: str) -> list[NetworkRecord]:
        out = []
        for ep in self.store.endpoints(container_id=container_id):
            net = self.store.network(ep.network_id)
            if net is not None and not net.builtin:
                out.append(net)
        return out

    def _program_ports(self, st: ContainerState) -> None:
        """Add the rules of the container's published ports; when iptables refuses them (our chains flushed or
        deleted under us), rebuild the firewall from the records (which hold these ports already) instead."""
        eps = self.store.endpoints(network_id=st.primary_network, container_id=st.container_id)
        net = self.store.network(st.primary_network)
        if not eps or net is None or not st.ports:
            return
        with self._fw_lock:
            try:
                self.firewall.add_ports(st.container_id, net.bridge, net.subnet, eps[0].ip, port_tuples(st.ports, False))
                if eps[0].ip6:
                    self.firewall6.add_ports(st.container_id, net.bridge, net.subnet6, eps[0].ip6,
                                             port_tuples(st.ports, True))
                    self.ports.relay_loopback6(st.container_id, eps[0].ip6)
                return
            except FirewallError as e:
                error = e
            if not self.heal_firewall():
                shown = ", ".join(f"{p.host_port}/{p.proto}" for p in st.ports)
                raise SystemError_(f"driver failed programming external connectivity on endpoint {st.name} "
                                   f"({eps[0].endpoint_id}): cannot program the firewall rules of port(s) "
                                   f"{shown}: {error}") from None

    def _unprogram_ports(self, st: ContainerState, eps: list[Endpoint] | None = None,
                         ports: list[PortMapping] | None = None) -> None:
        """Delete the rules of ``ports`` (default: all the container's), by spec when known."""
        ports = st.ports if ports is None else ports
        if eps is None:
            eps = self.store.endpoints(container_id=st.container_id)
        ep = next((e for e in eps if e.network_id == st.primary_network), None)
        net = self.store.network(st.primary_network) if ep is not None else None
        if ep is None or net is None:
            self.firewall.remove_container(st.container_id)
            self.firewall6.remove_container(st.container_id)
            return
        self.firewall.remove_ports(st.container_id, net.bridge, net.subnet, ep.ip, port_tuples(ports, False))
        if ep.ip6:
            self.firewall6.remove_ports(st.container_id, net.bridge, net.subnet6, ep.ip6, port_tuples(ports, True))
        elif port_tuples(ports, True):
            self.firewall6.remove_container(st.container_id)

    def _recover_endpoints(self, st: ContainerState, links_now: set[str]) -> None:
        """After a crash, make a live container's endpoints and its configured networks agree, by its links:
        an endpoint whose host veth exists is connected (a connect or a disconnect that a crash cut short is
        rolled forward or back to it), one without is not (its record and interface go)."""
        changed = False
        for ep in self.store.endpoints(container_id=st.container_id):
            net = self.store.network(ep.network_id)
            if net is None or ep.host_veth not in links_now:
                if st.netns_path:
                    try:
                        links.remove_inside(st.netns_path, ep.ifname)
                    except OSError:
                        pass
                self.store.delete_endpoint(ep.network_id, st.container_id)
                if net is not None:
                    self._forget_network(st.container_id, net)
                changed = True
                continue
            conf = self.store.configured(st.container_id)
            if conf is None or net.id not in conf.ids():
                ecfg: dict[str, Any] = {"Aliases": list(ep.aliases)}
                ipam_cfg = _ipam_config(ep)
                if ipam_cfg:
                    ecfg["IPAMConfig"] = ipam_cfg
                if ep.links:
                    ecfg["Links"] = list(ep.links)
                self._remember(st.container_id, net, ecfg)
                changed = True
        if changed:
            self._write_files(st, fresh=False)
        self._settings_changed(st.container_id)  # the container's record shows what the network's says

    def _restore_container(self, st: ContainerState) -> None:
        """After a daemon restart: hold the ports again, re-add rules and the DNS listener."""
        if st.ports:
            self.ports.adopt(st.container_id, st.ports)
            self.firewall.remove_container(st.container_id)
            self.firewall6.remove_container(st.container_id)
            self._program_ports(st)
        if st.netns_path and self._user_networks(st.container_id):
            try:
                self.dns.add_listener(st.container_id, st.netns_path)
            except OSError:
                pass

    # -- connect / disconnect / ports of existing containers ------------------------------------

    def connect(self, net_ref: str, container_ref: str,
                endpoint_cfg: dict[str, Any] | None = None) -> None:
        net = self._find(net_ref)
        cid, name = self._resolve_container(container_ref)
        ecfg = endpoint_cfg or {}
        if not net.is_bridge:
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        st = self.store.container(cid)
        if st is None:
            self._connect_configured(cid, net, ecfg)
            self._settings_changed(cid)
            return
        if st.mode == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if st.mode == "container":
            raise Forbidden("container sharing network namespace with another container or host cannot be "
                            "connected to any other network")
        if st.mode == "none":
            raise Forbidden("container cannot be connected to multiple networks with one of the networks in "
                            "private (none) mode")
        if self.store.endpoints(network_id=net.id, container_id=cid):
            raise Forbidden(f"endpoint with name {st.name} already exists in network {net.name}")
        self._attach_endpoint(st, net, ecfg)
        failpoint.hit("network.connect.attached")  # restart rolls forward: the link is there, so it is connected
        self._remember(cid, net, ecfg)
        if not net.builtin:
            assert st.netns_path
            self.dns.add_listener(cid, st.netns_path)
        self._write_files(st, fresh=False)
        self._settings_changed(cid)

    def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None:
        net = self._find(net_ref)
        cid, _name = self._resolve_container(container_ref)
        st = self.store.container(cid)
        if st is None:
            self._disconnect_configured(cid, net)
            self._settings_changed(cid)
            return
        eps = self.store.endpoints(network_id=net.id, container_id=cid)
        if not eps:
            if st.mode == "host" and net.driver == "host":
                raise Forbidden("container cannot be disconnected from host network or connected to host network")
            raise Forbidden(f"container {cid} is not connected to network {net.name}")
        self._forget_network(cid, net)
        failpoint.hit("network.disconnect.forgotten")  # restart rolls back: the link is there, so still connected
        ep = eps[0]
        if ep.network_id == st.primary_network and st.ports:
            self._unprogram_ports(st, eps)
            self.ports.release(cid)
            st.ports = []
            self.store.put_container(st)
        if st.netns_path:
            try:
                links.remove_inside(st.netns_path, ep.ifname)
            except OSError:
                pass
        self.netlink.delete_link(ep.host_veth)
        failpoint.hit("network.disconnect.unlinked")  # restart rolls forward: no link, so disconnected
        self.store.delete_endpoint(net.id, cid)
        if not self._user_networks(cid):
            self.dns.remove_listener(cid)
        self._write_files(st, fresh=False)
        self._publish("disconnect", net, {"container": cid})
        self._settings_changed(cid)

    def update_ports(self, container_id: str, add: list[str] | dict[str, Any],
                     remove: list[str]) -> dict[str, Any]:
        """Publish or unpublish ports of a running container (``container update --publish-add/-rm``).

        ``add`` takes ``-p`` specs (``[ip:][hostPort:]containerPort[/proto]``) or a PortBindings-shaped
        dict (``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``); ``remove`` takes
        ``containerPort[/proto]`` or ``hostPort:containerPort[/proto]``. Returns NetworkSettings.
        """
        st = self.store.container(container_id)
        if st is None:
            raise Conflict(f"container {container_id} is not running")
        if st.mode != "bridge" or not st.primary_network:
            raise InvalidParameter("published ports need a bridge network")
        doomed: list[PortMapping] = []
        for spec in remove or []:
            head, _, cpart = spec.rpartition(":")
            cport, proto = parse_port_key(cpart)
            host_port = int(head.rsplit(":", 1)[-1]) if head else 0
            hits = [p for p in st.ports if p.container_port == cport and p.proto == proto
                    and (host_port == 0 or p.host_port == host_port)]
            if not hits:
                raise NotFound(f"port {spec} is not published")
            doomed += hits
        primary = self.store.network(st.primary_network)
        dual = bool(primary is not None and primary.subnet6)
        if isinstance(add, dict):
            reqs = requests_from(add, False, None, dual_stack=dual)
        else:
            reqs = by_family([r for spec in add or [] for r in parse_publish(spec)], dual)
        eps = self.store.endpoints(network_id=st.primary_network, container_id=container_id)
        added = self.ports.reserve(container_id, reqs, f"{st.name} ({eps[0].endpoint_id if eps else ''})")
        if doomed:
            self.ports.release(container_id, only=doomed)
        with self._fw_lock:
            if st.ports:
                self._unprogram_ports(st)
            st.ports = [p for p in st.ports if p not in doomed] + added
            self.store.put_container(st)
            self._program_ports(st)
        self._settings_changed(container_id)
        return self.settings(container_id)

    # -- settings and files ---------------------------------------------------------------------

    def settings(self, container_id: str) -> dict[str, Any]:
        """The current inspect NetworkSettings: live ones, else those of the networks it is configured for."""
        st = self.store.container(container_id)
        if st is None:
            stopped = self.configured_settings(container_id)
            if stopped is None:
                raise NotFound(f"container {container_id} has no network")
            return stopped
        return self._settings_for(st, st.netns_path or "")

    def _settings_for(self, st: ContainerState, sandbox: str) -> dict[str, Any]:
        networks: dict[str, Any] = {}
        top = {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "EndpointID": ""}
        for ep in self.store.endpoints(container_id=st.container_id):
            net = self.store.network(ep.network_id)
            if net is None:
                continue
            networks[net.name] = {
                "IPAMConfig": _ipam_config(ep), "Links": ep.links or None, "Aliases": ep.aliases or None, "MacAddress": ep.mac, "DriverOpts": ep.driver_opts or None,
                "GwPriority": 0, "NetworkID": net.id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
                "IPAddress": ep.ip, "IPPrefixLen": ep.prefixlen, "IPv6Gateway": ep.gateway6,
                "GlobalIPv6Address": ep.ip6, "GlobalIPv6PrefixLen": ep.prefixlen6, "DNSNames": ep.dns_names or None,
            }
            if net.is_default_bridge:
                top = {"IPAddress": ep.ip, "IPPrefixLen": ep.prefixlen, "Gateway": ep.gateway,
                       "MacAddress": ep.mac, "EndpointID": ep.endpoint_id, "GlobalIPv6Address": ep.ip6,
                       "GlobalIPv6PrefixLen": ep.prefixlen6, "IPv6Gateway": ep.gateway6}
        if st.mode in ("host", "none"):
            special = self._find(st.mode)
            networks[st.mode] = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
                                 "DriverOpts": None, "GwPriority": 0, "NetworkID": special.id,
                                 "EndpointID": new_id(), "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                                 "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                                 "DNSNames": None}
        return {
            "Bridge": "", "SandboxID": st.container_id if sandbox else "", "SandboxKey": sandbox,
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": settings_ports(st.ports, st.exposed) if st.mode == "bridge" else {},
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
            **top, "Networks": networks,
        }

    def _result(self, st: ContainerState) -> ContainerNetwork:
        if st.mode == "host":
            self._write_files(st, fresh=True)
        d = st.files_dir
        return ContainerNetwork(st.netns_path, f"{d}/hosts", f"{d}/resolv.conf", f"{d}/hostname",
                                self._settings_for(st, st.netns_path or ""))

    def _write_files(self, st: ContainerState, *, fresh: bool) -> None:
        gateway = self._find("bridge").gateway
        extra = [etcfiles.parse_extra_host(e, gateway) for e in st.extra_hosts]
        host = etcfiles.read_host_resolv()
        if st.mode == "host":
            try:
                with open("/etc/hosts") as f:
                    base = f.read()
            except OSError:
                base = etcfiles.hosts_text(st.hostname, st.domainname, [], [])
            hosts = base + "".join(f"{ip}\t{name}\n" for ip, name in extra)
            # docker writes Config.Hostname (the containers service defaults it to the host's name)
            hostname = st.hostname or socket.gethostname()
        else:
            eps = self.store.endpoints(container_id=st.container_id)
            addrs = [ep.ip for ep in eps] + [ep.ip6 for ep in eps if ep.ip6]
            hosts = etcfiles.hosts_text(st.hostname, st.domainname, addrs, extra)
            hostname = st.hostname
        embedded = bool(self._user_networks(st.container_id))
        resolv = etcfiles.resolv_text(embedded=embedded, host=host, dns=st.dns, dns_search=st.dns_search,
                                      dns_options=st.dns_options, host_mode=st.mode == "host")
        if fresh:
            etcfiles.write_files(st.files_dir, hostname=hostname, hosts=hosts, resolv=resolv)
        else:
            _write_in_place(f"{st.files_dir}/hosts", hosts)
            _write_in_place(f"{st.files_dir}/resolv.conf", resolv)

    # -- embedded DNS ---------------------------------------------------------------------------

    def _dns_resolve(self, container_id: str, name: str) -> list[str] | None:
        """Addresses (IPv4 and IPv6) of containers, by name, alias or short id, on the asker's user
        networks; a name the asker's endpoint links to (EndpointConfig.Links ``target:alias``) resolves
        to the target's addresses on that network."""
        name = name.lower()
        found: list[str] = []
        for net in self._user_networks(container_id):
            short = name
            suffix = "." + net.name.lower()
            if name.endswith(suffix):
                short = name[: -len(suffix)]
            eps = self.store.endpoints(network_id=net.id)
            wanted = {short}
            for mine in (e for e in eps if e.container_id == container_id):
                for link in mine.links:
                    target, _, alias = link.partition(":")
                    if (alias or target).lower() == short:
                        wanted.add(target.lower().lstrip("/"))
            for ep in eps:
                names = {n.lower() for n in ep.dns_names}
                if wanted & names:
                    for addr in (ep.ip, ep.ip6):
                        if addr and addr not in found:
                            found.append(addr)
        return found or None

    def _dns_upstreams(self, container_id: str) -> list[tuple[str, int]]:
        st = self.store.container(container_id)
        if st is not None and st.dns:
            out = []
            for s in st.dns:
                try:
                    ipaddress.IPv4Address(s)
                    out.append((s, 53))
                except ValueError:
                    continue
            return out
        return self.host_upstreams()
