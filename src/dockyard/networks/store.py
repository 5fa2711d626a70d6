"""The network service's tables: networks, endpoints, and per-container network state."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.networks.models import Endpoint, NetworkRecord, PortMapping
from dockyard.storage.db import StateDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS net_endpoints (
    network_id TEXT NOT NULL, container_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id));
CREATE TABLE IF NOT EXISTS net_containers (container_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS net_configured (container_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS net_released_links (name TEXT PRIMARY KEY);
"""


@dataclass
class ContainerState:
    """What we keep about a container with live networking (to release, reconcile and answer DNS)."""

    container_id: str
    name: str
    hostname: str
    domainname: str
    mode: str  # bridge | host | none | container
    netns_path: str | None
    files_dir: str
    primary_network: str = ""
    ports: list[PortMapping] = field(default_factory=list)
    exposed: dict[str, Any] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    shared_with: str = ""  # container:<id> mode: the other container


@dataclass
class ConfiguredNetworks:
    """A container's network mode and the networks it joins at its next start, in order.

    Seeded at create (or at the first start) from HostConfig.NetworkMode and EndpointsConfig, then
    changed by connect/disconnect whether the container runs or not — docker's model, in which a
    stopped container's NetworkSettings.Networks is what its next start attaches.
    """

    mode: str  # HostConfig.NetworkMode as given ("bridge", "host", "none", "container:<id>", a network)
    networks: list[tuple[str, str, dict[str, Any]]]  # (network id, network name, EndpointSettings)

    def ids(self) -> list[str]:
        return [i for i, _n, _c in self.networks]


def _net_from(data: str) -> NetworkRecord:
    return NetworkRecord(**json.loads(data))


def _ep_from(data: str) -> Endpoint:
    return Endpoint(**json.loads(data))


def _ctr_from(data: str) -> ContainerState:
    d = json.loads(data)
    d["ports"] = [PortMapping(**p) for p in d.get("ports", [])]
    return ContainerState(**d)


class NetworkStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    # networks
    def networks(self) -> list[NetworkRecord]:
        return [_net_from(r["data"]) for r in self.db.query("SELECT data FROM networks ORDER BY name")]

    def network(self, network_id: str) -> NetworkRecord | None:
        r = self.db.query_one("SELECT data FROM networks WHERE id=?", (network_id,))
        return _net_from(r["data"]) if r else None

    def put_network(self, net: NetworkRecord) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO networks (id, name, data) VALUES (?,?,?)",
                      (net.id, net.name, json.dumps(asdict(net))))

    def delete_network(self, network_id: str, bridge: str = "") -> None:
        """The network's record; its ``bridge`` stays named (released) until it is gone from the host."""
        with self.db.tx() as c:
            c.execute("DELETE FROM networks WHERE id=?", (network_id,))
            if bridge:
                c.execute("INSERT OR IGNORE INTO net_released_links (name) VALUES (?)", (bridge,))

    # links whose record went while the link itself may still be on the host (deleted in the background)
    def released_links(self) -> set[str]:
        return {r["name"] for r in self.db.query("SELECT name FROM net_released_links")}

    def forget_released(self, names: set[str]) -> None:
        with self.db.tx() as c:
            c.executemany("DELETE FROM net_released_links WHERE name=?", [(n,) for n in names])

    # endpoints
    def endpoints(self, network_id: str | None = None, container_id: str | None = None) -> list[Endpoint]:
        sql, params = "SELECT data FROM net_endpoints WHERE 1=1", []
        if network_id is not None:
            sql += " AND network_id=?"
            params.append(network_id)
        if container_id is not None:
            sql += " AND container_id=?"
            params.append(container_id)
        return [_ep_from(r["data"]) for r in self.db.query(sql + " ORDER BY rowid", tuple(params))]

    def put_endpoint(self, ep: Endpoint) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO net_endpoints (network_id, container_id, data) VALUES (?,?,?)",
                      (ep.network_id, ep.container_id, json.dumps(asdict(ep))))

    def delete_endpoint(self, network_id: str, container_id: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM net_endpoints WHERE network_id=? AND container_id=?", (network_id, container_id))

    # containers
    def containers(self) -> list[ContainerState]:
        return [_ctr_from(r["data"]) for r in self.db.query("SELECT data FROM net_containers")]

    def container(self, container_id: str) -> ContainerState | None:
        r = self.db.query_one("SELECT data FROM net_containers WHERE container_id=?", (container_id,))
        return _ctr_from(r["data"]) if r else None

    def put_container(self, st: ContainerState) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO net_containers (container_id, data) VALUES (?,?)",
                      (st.container_id, json.dumps(asdict(st))))

    def delete_container_all(self, container_id: str) -> None:
        """The container's record and all its endpoints, in one transaction; their host veths stay named
        (released) until they are gone from the host, so a crash before the background delete leaves no link
        that no record names."""
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO net_released_links (name) SELECT json_extract(data, '$.host_veth') "
                      "FROM net_endpoints WHERE container_id=? AND json_extract(data, '$.host_veth') != ''",
                      (container_id,))
            c.execute("DELETE FROM net_endpoints WHERE container_id=?", (container_id,))
            c.execute("DELETE FROM net_containers WHERE container_id=?", (container_id,))

    def delete_container(self, container_id: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM net_containers WHERE container_id=?", (container_id,))

    # the networks a container is configured for (docker's NetworkSettings.Networks while it is stopped)
    def configured(self, container_id: str) -> ConfiguredNetworks | None:
        r = self.db.query_one("SELECT data FROM net_configured WHERE container_id=?", (container_id,))
        if r is None:
            return None
        d = json.loads(r["data"])
        return ConfiguredNetworks(mode=d["mode"], networks=[(i, n, c) for i, n, c in d["networks"]])

    def configured_networks(self) -> set[str]:
        """Ids of the networks any container is configured for (prune keeps them)."""
        out: set[str] = set()
        for r in self.db.query("SELECT data FROM net_configured"):
            out |= {i for i, _n, _c in json.loads(r["data"])["networks"]}
        return out

    def put_configured(self, container_id: str, conf: ConfiguredNetworks) -> None:
        data = json.dumps({"mode": conf.mode, "networks": [list(t) for t in conf.networks]})
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO net_configured (container_id, data) VALUES (?,?)", (container_id, data))

    def delete_configured(self, container_id: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM net_configured WHERE container_id=?", (container_id,))
