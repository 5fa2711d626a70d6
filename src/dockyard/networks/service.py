"""NetworkService: networks (create/list/inspect/remove/prune) and daemon-wide lifecycle.

Contract with the containers service::

    svc = NetworkService(db, data_root, events, containers, bridge="dockyard0", bip=None, prefix="dy",
                         iptables=True)
    svc.startup()                       # default bridge + user bridges, chains, reconcile after a crash
    svc.configure_container(cid, mode, endpoints)  # at create: record HostConfig.NetworkMode + EndpointsConfig
                                        # (docker's NetworkSettings.Networks); returns inspect's NetworkSettings
    net = svc.prepare_container(cfg)    # before the runtime create: ContainerNetwork (netns to join,
                                        # hosts/resolv.conf/hostname to bind in, NetworkSettings)
    svc.release_container(cid)          # after the container stopped (idempotent)
    svc.update_ports(cid, add, remove)  # container update --publish-add/--publish-rm
    svc.forget_container(cid)           # container removed: drop connections kept for its next start
    svc.shutdown()                      # daemon stop: running containers keep their networking
    svc.destroy_all()                   # tests: remove every bridge, rule and namespace of ours

What it asks of the containers is ``networks/ports.py``'s ``ContainerDirectory``, a required constructor
argument: ``live_ids()`` (running containers, kept by reconcile), ``identify(ref)`` (id or name → (id, name),
for connect/disconnect of stopped containers) and ``settings_changed(id, NetworkSettings)`` (told after
connect/disconnect/update_ports change a container's settings, running or not; ``settings(cid)`` reads them
at any time). A container that does not run is attached at its next start to exactly
the networks recorded for it (configured.py): connect/disconnect before a start or while stopped
edit that record, as in docker. Names of links, chains and namespaces all start with ``prefix`` so a
daemon only ever touches its own.

Start and stop are on every ``docker run``'s path, so they are kept to a few milliseconds:
the namespace comes from a small pool of ready ones (nspool.py), the veth pair is one raw
rtnetlink request with its peer created inside the namespace (rtnl.py), a container without
published ports costs no iptables process (with ports: one iptables-restore each way), the
/etc files are written without fsync, and the kernel's slow veth deletion runs on a background
thread after release returns (bridge.Netlink.delete_link_later). ``bench/network_bench.py churn``
measures it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from dockyard.networks import ipam, ipam6, netns
from dockyard.networks.attach import Attacher
from dockyard.networks.bridge import Netlink, link_name
from dockyard.networks.dns import DNSServer
from dockyard.networks.etcfiles import read_host_resolv
from dockyard.networks.firewall import Firewall, FirewallError
from dockyard.networks.models import NetworkRecord
from dockyard.networks.nspool import NamespacePool
from dockyard.networks.portmap import PortAllocator, port_tuples
from dockyard.networks.store import NetworkStore
from dockyard.networks.views import PRUNE_FILTERS, matches_filters, network_json, normalize_filters
from dockyard.storage.db import StateDB
from dockyard.util import failpoint
from dockyard.util.ids import new_id

if TYPE_CHECKING:
    from dockyard.events.bus import EventBus
    from dockyard.networks.ports import ContainerDirectory

log = logging.getLogger("dockyard.networks")

OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


class NetworkService(Attacher):
    def __init__(self, db: StateDB, data_root: str, events: EventBus | None, containers: ContainerDirectory, *,
                 bridge: str = "dockyard0", bip: str | None = None, prefix: str = "dy",
                 iptables: bool = True, firewall_check_interval: float = 60.0, ip6tables: bool = True,
                 ipv6: bool = False, fixed_cidr_v6: str | None = None) -> None:
        self.db = db
        self.containers = containers
        self.data_root = data_root
        self.events = events
        self.default_bridge = bridge
        self.bip = bip
        self.prefix = prefix
        self.netns_dir = os.path.join(data_root, "netns")
        self.store = NetworkStore(db)
        self.netlink = Netlink()
        self.nspool = NamespacePool(self.netns_dir)
        self.firewall = Firewall(prefix, enabled=iptables)
        # the IPv6 side of dual-stack networks and their [::] ports (dockerd's ip6tables option)
        self.firewall6 = Firewall(prefix, enabled=iptables and ip6tables, family=6)
        self.bridge_ipv6 = ipv6  # daemon.json "ipv6" (fixed-cidr-v6 alone does nothing, as in dockerd)
        self.fixed_cidr_v6 = fixed_cidr_v6
        self.ports = PortAllocator()
        self.dns = DNSServer(self._dns_resolve, self._dns_upstreams)
        self._dns_override: list[tuple[str, int]] | None = None
        self._started = False
        # create, remove and prune of networks one at a time: a prune must never remove a network a create is
        # still bringing up (its bridge and rules would outlive the record)
        self._nets_lock = threading.RLock()
        self._fw_lock = threading.RLock()  # port rules vs. a firewall rebuild (heal_firewall)
        self._check_interval = firewall_check_interval
        self._check_stop = threading.Event()
        self._checker: threading.Thread | None = None

    def _settings_changed(self, container_id: str) -> None:
        if self.store.container(container_id) is not None:
            self.containers.settings_changed(container_id, self.settings(container_id))
            return
        stopped = self.configured_settings(container_id)
        if stopped is not None:
            self.containers.settings_changed(container_id, stopped)

    def set_dns_upstreams(self, servers: list[tuple[str, int]] | None) -> None:
        """Upstream resolvers for names the embedded DNS does not know (default: the host's resolv.conf)."""
        self._dns_override = servers

    def host_upstreams(self) -> list[tuple[str, int]]:
        if self._dns_override is not None:
            return list(self._dns_override)
        return [(s, 53) for s in read_host_resolv().nameservers if ":" not in s]  # IPv4 servers only

    def _publish(self, action: str, net: NetworkRecord, attrs: dict[str, str] | None = None) -> None:
        if self.events is not None:
            self.events.publish("network", action, net.id, {"name": net.name, "type": net.driver, **(attrs or {})})

    # -- lifecycle ------------------------------------------------------------------------------

    def startup(self) -> None:
        netns.ensure_private_dir(self.netns_dir)
        self.firewall.setup()
        self.firewall6.setup()
        self._ensure_builtin()
        for net in self.store.networks():
            if net.is_bridge:
                self._bring_up(net)
        self.dns.start()
        self._reconcile()
        self.nspool.start()
        self._started = True
        if self.firewall.enabled and self._check_interval > 0:
            self._check_stop.clear()
            self._checker = threading.Thread(target=self._check_loop, name="firewall-check", daemon=True)
            self._checker.start()

    def shutdown(self) -> None:
        """Stop serving. With containers still running their links, rules and namespaces stay (live
        restore); with none left, bridges and chains go too so a stopped daemon leaves the host clean."""
        self.nspool.stop()
        self._check_stop.set()
        if self._checker is not None:
            self._checker.join(10)
            self._checker = None
        if self._started:
            self.dns.stop()
            self.dns = DNSServer(self._dns_resolve, self._dns_upstreams)
        self.ports.release_all()
        self._started = False
        if not self.store.containers():
            self._teardown()
        self.netlink.close()

    def destroy_all(self) -> None:
        """Remove every bridge, rule and namespace this daemon made (tests)."""
        for st in self.store.containers():
            self.release_container(st.container_id)
        self.shutdown()

    def _teardown(self) -> None:
        for net in self.store.networks():
            if net.is_bridge and net.bridge:
                self.netlink.delete_link(net.bridge)
        named = self._recorded_links()
        for name in self.netlink.link_names():
            if name in named:
                self.netlink.delete_link(name)
        self.store.forget_released(self.store.released_links())
        self.firewall.teardown()
        self.firewall6.teardown()
        if os.path.isdir(self.netns_dir):
            for f in os.listdir(self.netns_dir):
                netns.remove(os.path.join(self.netns_dir, f))
        netns.release_private_dir(self.netns_dir)

    def _ensure_builtin(self) -> None:
        existing = {n.name: n for n in self.store.networks()}
        if self.bip:
            iface = ipaddress.IPv4Interface(self.bip)
            subnet, gateway = str(iface.network), str(iface.ip)
        elif "bridge" in existing:
            subnet, gateway = existing["bridge"].subnet, existing["bridge"].gateway
        else:
            others = [ipaddress.IPv4Network(n.subnet) for n in existing.values() if n.subnet]
            chosen = ipam.choose_subnet(others, self.netlink.routes())
            subnet, gateway = str(chosen), str(chosen.network_address + 1)
        old = existing.get("bridge")
        subnet6, gateway6 = self._default_bridge_v6(old, existing)
        bridge = NetworkRecord(
            id=old.id if old else new_id(), name="bridge", driver="bridge", created=old.created if old else _now(),
            subnet=subnet, gateway=gateway, bridge=self.default_bridge, builtin=True,
            options={"com.docker.network.bridge.default_bridge": "true",
                     "com.docker.network.bridge.enable_icc": "true",
                     "com.docker.network.bridge.enable_ip_masquerade": "true",
                     "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                     OPT_BRIDGE_NAME: self.default_bridge, OPT_MTU: "1500"},
            enable_ipv6=bool(subnet6), subnet6=subnet6, gateway6=gateway6, user_subnet6=bool(self.fixed_cidr_v6))
        changed = old and (old.bridge != bridge.bridge or old.subnet != subnet or old.subnet6 != subnet6)
        if old and changed and old.bridge:
            self.netlink.delete_link(old.bridge)
        self.store.put_network(bridge)
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in existing:
                self.store.put_network(NetworkRecord(id=new_id(), name=name, driver=driver, created=_now(),
                                                     builtin=True))

    def _default_bridge_v6(self, old: NetworkRecord | None, existing: dict[str, NetworkRecord]) -> tuple[str, str]:
        """The default bridge's IPv6 (subnet, gateway): only with daemon.json ``ipv6`` (as dockerd), from
        ``fixed-cidr-v6`` or else a unique-local /64 kept across restarts."""
        if not self.bridge_ipv6:
            return "", ""
        if self.fixed_cidr_v6:
            pool = ipam6.make_pool6(str(ipaddress.IPv6Network(self.fixed_cidr_v6, strict=False)))
        elif old is not None and old.subnet6 and not old.user_subnet6:
            return old.subnet6, old.gateway6
        else:
            others = [ipaddress.IPv6Network(n.subnet6) for n in existing.values() if n.subnet6 and n.name != "bridge"]
            pool = ipam6.make_pool6(str(ipam6.unique_local_subnet(others)))
        return str(pool.subnet), str(pool.gateway)

    def _bring_up(self, net: NetworkRecord, fresh: bool = False) -> None:
        """The bridge and the firewall rules of ``net``; ``fresh``: just created (its new id can have no
        rules yet, so none are looked for: listing our chains costs a process each)."""
        prefixlen = ipaddress.IPv4Network(net.subnet).prefixlen
        self.netlink.ensure_bridge(net.bridge, net.gateway, prefixlen, int(net.options.get(OPT_MTU, "1500")))
        if net.subnet6:
            self.netlink.ensure_bridge_v6(net.bridge, net.gateway6, ipaddress.IPv6Network(net.subnet6).prefixlen)
        with self._fw_lock:
            if not fresh:
                self.firewall.remove_network(net.id)
                self.firewall6.remove_network(net.id)
            try:
                self.firewall.add_network(net.id, net.bridge, net.subnet, net.internal)
                if net.subnet6:
                    self.firewall6.add_network(net.id, net.bridge, net.subnet6, net.internal)
            except FirewallError as e:
                if not self._started or not self.heal_firewall():  # the rebuild adds this recorded network too
                    raise SystemError_(f"cannot program the firewall rules of network {net.name}: {e}") from None

    # -- firewall healing ------------------------------------------------------------------------

    def _firewall_want(self, v6: bool = False) -> Any:
        """What each firewall should hold (``v6``: the ip6tables one, dual-stack networks and [::] ports)."""
        nets = [(n.id, n.bridge, n.subnet6 if v6 else n.subnet, n.internal) for n in self.store.networks()
                if n.is_bridge and (n.subnet6 or not v6)]
        ctrs = []
        for st in self.store.containers():
            if not st.ports:
                continue
            eps = self.store.endpoints(network_id=st.primary_network, container_id=st.container_id)
            net = self.store.network(st.primary_network)
            ports = port_tuples(st.ports, v6)
            if eps and net is not None and ports and (eps[0].ip6 or not v6):
                ctrs.append((st.container_id, net.bridge, net.subnet6 if v6 else net.subnet,
                             eps[0].ip6 if v6 else eps[0].ip, ports))
        return (self.firewall6 if v6 else self.firewall).expected_counts(nets, ctrs)

    def heal_firewall(self) -> bool:
        """Rebuild our chains and rules from the records when the host lost some of them (a firewall reload,
        ``iptables -F``, another tool), as dockerd does after a firewalld reload. True when it had to."""
        if not self.firewall.enabled:
            return False
        with self._nets_lock, self._fw_lock:
            healed = False
            for v6, fw in ((False, self.firewall), (True, self.firewall6)):
                if not fw.enabled:
                    continue
                missing = fw.missing(self._firewall_want(v6))
                if not missing:
                    continue
                log.warning("firewall (%s): %s missing or changed; re-creating our chains and rules",
                            "ip6tables" if v6 else "iptables", ", ".join(missing))
                healed = True
                fw.setup()
                for net in self.store.networks():
                    if net.is_bridge and (net.subnet6 or not v6):
                        fw.add_network(net.id, net.bridge, net.subnet6 if v6 else net.subnet, net.internal)
                for st in self.store.containers():
                    eps = self.store.endpoints(network_id=st.primary_network, container_id=st.container_id)
                    primary = self.store.network(st.primary_network)
                    ports = port_tuples(st.ports, v6)
                    if ports and eps and primary is not None and (eps[0].ip6 or not v6):
                        fw.add_ports(st.container_id, primary.bridge, primary.subnet6 if v6 else primary.subnet,
                                     eps[0].ip6 if v6 else eps[0].ip, ports)
            return healed

    def _check_loop(self) -> None:
        """The cheap periodic check: one iptables-save per interval, a rebuild only when something is off."""
        while not self._check_stop.wait(self._check_interval):
            try:
                self.heal_firewall()
                self.prune_released()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("firewall check failed")

    def _reconcile(self) -> None:
        """Keep what belongs to live containers, remove what a crash left behind."""
        live_ids = self.containers.live_ids()
        in_use = netns.netns_inodes_in_use()
        links_now = set(self.netlink.link_names())
        keep_links: set[str] = set()
        keep_ns: set[str] = set()
        for st in self.store.containers():
            alive = st.container_id in live_ids
            if st.netns_path and st.mode in ("bridge", "none"):
                try:
                    alive = alive or (netns.is_pinned(st.netns_path) and os.stat(st.netns_path).st_ino in in_use)
                except OSError:
                    alive = False
                if not netns.is_pinned(st.netns_path):
                    alive = False
            if not alive:
                self.release_container(st.container_id)
                continue
            if st.netns_path:
                keep_ns.add(os.path.basename(st.netns_path))
            self._recover_endpoints(st, links_now)
            self._restore_container(st)
            keep_links |= {ep.host_veth for ep in self.store.endpoints(container_id=st.container_id)}
        bridges = {n.bridge for n in self.store.networks() if n.is_bridge}
        named = self._recorded_links()
        for name in self.netlink.link_names():  # only links our records name: never another daemon's
            if name in named and name not in keep_links and name not in bridges:
                self.netlink.delete_link(name)
        self.prune_released()
        for f in os.listdir(self.netns_dir):
            if f not in keep_ns:
                netns.remove(os.path.join(self.netns_dir, f))
        for ep in self.store.endpoints():
            if self.store.container(ep.container_id) is None:
                self.store.delete_endpoint(ep.network_id, ep.container_id)

    def _recorded_links(self) -> set[str]:
        """Every host link this daemon's records name: endpoints' veths, networks' bridges, and the links
        released (record gone, link deleted in the background) that may still be on the host."""
        names = {ep.host_veth for ep in self.store.endpoints() if ep.host_veth}
        names |= {n.bridge for n in self.store.networks() if n.is_bridge and n.bridge}
        return names | self.store.released_links()

    def prune_released(self) -> None:
        """Forget released links that are gone from the host (the background deletes have finished)."""
        released = self.store.released_links()
        if released:
            self.store.forget_released(released - set(self.netlink.link_names()))

    # -- lookups --------------------------------------------------------------------------------

    def _find(self, ref: str) -> NetworkRecord:
        """By full id, name, or unique id prefix (docker's order)."""
        nets = self.store.networks()
        for n in nets:
            if n.id == ref:
                return n
        for n in nets:
            if n.name == ref:
                return n
        hits = [n for n in nets if n.id.startswith(ref)] if ref else []
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise NotFound(f"network {ref} is ambiguous ({len(hits)} matches found on name)")
        raise NotFound(f"network {ref} not found")

    def _resolve_container(self, ref: str) -> tuple[str, str]:
        return self.containers.identify(ref)

    # -- API ------------------------------------------------------------------------------------

    def create(self, name: str, driver: str = "bridge", *, internal: bool = False, attachable: bool = False,
               ipam_cfg: dict[str, Any] | None = None, options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, enable_ipv6: bool = False,
               check_duplicate: bool = True) -> dict[str, str]:
        """POST /networks/create; returns {"Id", "Warning"}."""
        if not name:
            raise InvalidParameter("network name must not be empty")
        driver = driver or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        with self._nets_lock:
            return self._create_locked(name, internal=internal, attachable=attachable, ipam_cfg=ipam_cfg,
                                       options=options, labels=labels, enable_ipv6=enable_ipv6)

    def _create_locked(self, name: str, *, internal: bool, attachable: bool, ipam_cfg: dict[str, Any] | None,
                       options: dict[str, str] | None, labels: dict[str, str] | None,
                       enable_ipv6: bool = False) -> dict[str, str]:
        if any(n.name == name for n in self.store.networks()):
            raise Conflict(f"network with name {name} already exists")
        ipam_cfg = ipam_cfg or {}
        all_configs = [c for c in (ipam_cfg.get("Config") or []) if c.get("Subnet") or c.get("Gateway")]
        configs = [c for c in all_configs if not ipam6.is_v6(str(c.get("Subnet") or c.get("Gateway")))]
        configs6 = [c for c in all_configs if ipam6.is_v6(str(c.get("Subnet") or c.get("Gateway")))]
        v6 = self._ipv6_pool(configs6, enable_ipv6)
        others = [ipaddress.IPv4Network(n.subnet) for n in self.store.networks() if n.subnet]
        routes = self.netlink.routes()
        if configs:
            c0 = configs[0]
            if not c0.get("Subnet"):
                raise InvalidParameter("gateway requires a subnet")
            pool = ipam.make_pool(c0["Subnet"], c0.get("Gateway", ""), c0.get("IPRange", ""))
            ipam.check_no_overlap(pool.subnet, others, routes)
            aux = {str(k): str(v) for k, v in (c0.get("AuxiliaryAddresses") or {}).items()}
            ipam.check_aux_addresses(pool, aux)
        else:
            sub = ipam.choose_subnet(others, routes)
            pool = ipam.make_pool(str(sub))
            aux = {}
        options = dict(options or {})
        net_id = new_id()
        bridge = options.get(OPT_BRIDGE_NAME) or link_name(self.prefix, "b", net_id)
        if any(n.bridge == bridge for n in self.store.networks()) or self.netlink.exists(bridge):
            raise Conflict(f"bridge name {bridge} is already in use")
        net = NetworkRecord(id=net_id, name=name, driver="bridge", created=_now(), subnet=str(pool.subnet),
                            gateway=str(pool.gateway), ip_range=str(pool.ip_range or ""),
                            bridge=bridge, internal=internal, attachable=attachable, labels=dict(labels or {}),
                            options=options, ipam_options=dict(ipam_cfg.get("Options") or {}),
                            ipam_driver=ipam_cfg.get("Driver") or "default", user_subnet=bool(configs),
                            aux_addresses=aux, enable_ipv6=enable_ipv6,
                            subnet6=str(v6.subnet) if v6 else "", gateway6=str(v6.gateway) if v6 else "",
                            ip_range6=str(v6.ip_range or "") if v6 else "", user_subnet6=bool(configs6),
                            unused_ipam=[] if enable_ipv6 else [{str(k): str(v) for k, v in c.items()}
                                                                for c in configs6])
        self.store.put_network(net)
        failpoint.hit("network.create.recorded")  # restart brings every recorded network up
        try:
            self._bring_up(net, fresh=True)
        except BaseException:
            self.store.delete_network(net.id, bridge)
            self.netlink.delete_link(bridge)
            self.firewall.remove_network(net.id)
            self.firewall6.remove_network(net.id)
            raise
        self._publish("create", net)
        return {"Id": net.id, "Warning": ""}

    def _ipv6_pool(self, configs6: list[dict[str, Any]], enable_ipv6: bool) -> ipam6.Pool6 | None:
        """The IPv6 pool of a new network: the user's (checked either way) when IPv6 is enabled, else None."""
        pools = []
        for c in configs6:
            if not c.get("Subnet"):
                raise InvalidParameter("gateway requires a subnet")
            pools.append(ipam6.make_pool6(str(c["Subnet"]), str(c.get("Gateway") or ""), str(c.get("IPRange") or "")))
        if not enable_ipv6:
            return None
        others = [ipaddress.IPv6Network(n.subnet6) for n in self.store.networks() if n.subnet6]
        if pools:
            ipam6.check_no_overlap6(pools[0].subnet, others)
            return pools[0]
        return ipam6.make_pool6(str(ipam6.unique_local_subnet(others)))

    def inspect(self, ref: str, *, verbose: bool = False) -> dict[str, Any]:
        net = self._find(ref)
        return network_json(net, self.store.endpoints(network_id=net.id), with_containers=True)

    def list(self, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        flt = normalize_filters(filters)
        out = []
        used = {ep.network_id for ep in self.store.endpoints()}
        for net in self.store.networks():
            if matches_filters(net, flt, in_use=net.id in used):
                out.append(network_json(net, [], with_containers=False))
        return out

    def remove(self, ref: str) -> None:
        with self._nets_lock:
            self._remove_locked(ref)

    def _remove_locked(self, ref: str) -> None:
        net = self._find(ref)
        if net.builtin:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        if self.store.endpoints(network_id=net.id):
            # moby answers ActiveEndpointsError as Forbidden (403)
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} has active endpoints")
        self.firewall.remove_network(net.id)
        self.firewall6.remove_network(net.id)
        self.netlink.delete_link(net.bridge)
        self.store.delete_network(net.id)
        self.firewall.keep_only_networks([n.id for n in self.store.networks()])  # every rule has its network
        self.firewall6.keep_only_networks([n.id for n in self.store.networks() if n.subnet6])
        self._publish("destroy", net)

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._nets_lock:
            return self._prune_locked(filters)

    def _prune_locked(self, filters: dict[str, Any] | None) -> dict[str, Any]:
        flt = normalize_filters(filters, PRUNE_FILTERS)
        used = {ep.network_id for ep in self.store.endpoints()} | self.store.configured_networks()
        deleted = []
        for net in self.store.networks():
            if net.builtin or net.id in used:
                continue
            if not matches_filters(net, {k: v for k, v in flt.items() if k in ("label", "label!", "until")},
                                   in_use=False):
                continue
            self.remove(net.id)
            deleted.append(net.name)
        return {"NetworksDeleted": deleted}
