"""Docker's JSON shape for networks, and the list/prune filters."""

from __future__ import annotations

import time
from typing import Any

from dockyard.errors import InvalidParameter
from dockyard.networks.models import Endpoint, NetworkRecord
from dockyard.util import filtermatch

# GET /networks takes these (docker's network.acceptedFilters); POST /networks/prune takes PRUNE_FILTERS
LIST_FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})
PRUNE_FILTERS = frozenset({"label", "label!", "until"})
DANGLING_MSG = 'invalid value for filter \'dangling\', must be "true" (or "1"), or "false" (or "0")'


def network_json(net: NetworkRecord, endpoints: list[Endpoint], *, with_containers: bool) -> dict[str, Any]:
    """GET /networks/{id} (and, without Containers, one item of GET /networks)."""
    config: list[dict[str, str]] = []
    if net.subnet:
        item = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            item["IPRange"] = net.ip_range
        if net.aux_addresses:
            item["AuxiliaryAddresses"] = dict(net.aux_addresses)  # type: ignore[assignment]
        config.append(item)
    if net.subnet6:
        item6 = {"Subnet": net.subnet6, "Gateway": net.gateway6}
        if net.ip_range6:
            item6["IPRange"] = net.ip_range6
        config.append(item6)
    config.extend(dict(c) for c in net.unused_ipam)
    containers: dict[str, Any] = {}
    for ep in endpoints:
        containers[ep.container_id] = {
            "Name": ep.container_name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
            "IPv4Address": f"{ep.ip}/{ep.prefixlen}", "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else "",
        }
    scope = "local"
    out: dict[str, Any] = {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": scope, "Driver": net.driver,
        "EnableIPv4": True, "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": net.ipam_driver, "Options": net.ipam_options or None, "Config": config},
        "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": containers if with_containers else {},
        "Options": dict(net.options), "Labels": dict(net.labels),
    }
    if net.builtin and net.driver != "bridge":
        out["IPAM"]["Options"] = None
    return out


def normalize_filters(filters: dict[str, Any] | None,
                      known: frozenset[str] = LIST_FILTERS) -> dict[str, list[str]]:
    """Accept both {"k": ["v"]} and the legacy {"k": {"v": true}} forms; an unknown key is docker's 400."""
    out: dict[str, list[str]] = {}
    for key, val in (filters or {}).items():
        if key not in known:
            raise InvalidParameter(f"invalid filter '{key}'")
        if isinstance(val, dict):
            out[key] = [k for k, on in val.items() if on]
        elif isinstance(val, list):
            out[key] = [str(v) for v in val]
        else:
            out[key] = [str(val)]
    return out


def _parse_until(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return time.mktime(time.strptime(value[:19], fmt))
        except ValueError:
            continue
    raise InvalidParameter(f"invalid filter 'until={value}'")


def _created_ts(net: NetworkRecord) -> float:
    try:
        return time.mktime(time.strptime(net.created[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return 0.0


def matches_filters(net: NetworkRecord, flt: dict[str, list[str]], *, in_use: bool) -> bool:
    if "driver" in flt and net.driver not in flt["driver"]:
        return False
    if "id" in flt and not filtermatch.match(flt["id"], net.id):
        return False
    if "name" in flt and not filtermatch.match(flt["name"], net.name):
        return False
    if "label" in flt and not all(filtermatch.label_match(net.labels, v) for v in flt["label"]):
        return False
    if "label!" in flt and any(filtermatch.label_match(net.labels, v) for v in flt["label!"]):
        return False
    if "scope" in flt and "local" not in flt["scope"]:
        return False
    if "type" in flt:
        kind = "builtin" if net.builtin else "custom"
        for v in flt["type"]:
            if v not in ("builtin", "custom"):
                raise InvalidParameter(f"invalid filter: 'type'='{v}'")
        if kind not in flt["type"]:
            return False
    if "dangling" in flt:
        want = filtermatch.bool_value("dangling", flt["dangling"], DANGLING_MSG)
        dangling = not in_use and not net.builtin
        if want != dangling:
            return False
    if "until" in flt and not all(_created_ts(net) < _parse_until(v) for v in flt["until"]):
        return False
    return True
