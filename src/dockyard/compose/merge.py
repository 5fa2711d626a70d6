"""Merging compose files (``-f a -f b``, overrides, ``extends``), by the specification's merge rules.

Mappings merge key by key, the later file winning on scalars. Sequences append, except where the
specification names them: ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced; ``environment``,
``labels`` and the other list-or-mapping keys merge as mappings; ``volumes`` merge by container path,
``secrets``/``configs`` by target, ``depends_on``/``networks`` by name; lists of unique values (``dns``,
``cap_add``, ``ports`` …) drop duplicates. An extension (``x-*`` key, at any level) is replaced whole, never
merged, as compose-go does.
"""

from __future__ import annotations

import copy
from typing import Any

# keys holding "KEY=VALUE" lists or mappings: merged as mappings
_MAPPING_KEYS = {"environment", "labels", "sysctls", "annotations", "extra_hosts", "args", "driver_opts",
                 "options", "ulimits", "storage_opt"}
# replaced whole by the later file
_REPLACED = {"command", "entrypoint", "test"}
# sequences of unique values
_UNIQUE_LISTS = {"dns", "dns_search", "dns_opt", "cap_add", "cap_drop", "expose", "external_links", "links",
                 "profiles", "security_opt", "env_file", "label_file", "tmpfs", "ports", "volumes_from",
                 "cache_from", "cache_to", "group_add", "devices", "device_cgroup_rules", "tags", "platforms"}


def list_to_mapping(value: Any, sep: str = "=") -> dict[str, Any]:
    """``["A=1", "B"]`` → ``{"A": "1", "B": None}``; a mapping is returned as a copy."""
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or []:
        text = str(item)
        if sep in text:
            k, _, v = text.partition(sep)
            out[k] = v
        else:
            out[text] = None
    return out


def hosts_to_mapping(value: Any) -> dict[str, Any]:
    """extra_hosts as ``{host: ip}`` from ``host:ip``/``host=ip`` lists or a mapping."""
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or []:
        text = str(item)
        if "=" in text:
            k, _, v = text.partition("=")
        else:
            k, _, v = text.partition(":")
        out[k] = v
    return out


def _volume_target(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target", ""))
    parts = str(item).split(":")
    if len(parts) == 1:
        return parts[0]
    return parts[1]


def _by_key(base: list[Any], over: list[Any], key: Any) -> list[Any]:
    index = {key(item): i for i, item in enumerate(base)}
    out = list(base)
    for item in over:
        k = key(item)
        if k in index:
            out[index[k]] = item
        else:
            index[k] = len(out)
            out.append(item)
    return out


def _secret_key(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target") or item.get("source"))
    return str(item)


def _depends_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    return {str(s): {"condition": "service_started", "required": True} for s in value or []}


def _networks_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    return {str(n): None for n in value or []}


def merge_values(base: Any, over: Any, key: str = "") -> Any:
    """``over`` merged onto ``base`` for the field named ``key``."""
    if key in _REPLACED:
        return copy.deepcopy(over)
    if key == "extra_hosts":
        return {**hosts_to_mapping(base), **hosts_to_mapping(over)}
    if key in _MAPPING_KEYS and (isinstance(base, (list, dict)) and isinstance(over, (list, dict))):
        return merge_values(list_to_mapping(base), list_to_mapping(over))
    if key == "depends_on":
        return merge_mapping(_depends_mapping(base), _depends_mapping(over))
    if key == "networks" and (isinstance(base, list) or isinstance(over, list)):
        return merge_mapping(_networks_mapping(base), _networks_mapping(over))
    if isinstance(base, dict) and isinstance(over, dict):
        return merge_mapping(base, over)
    if isinstance(base, list) and isinstance(over, list):
        if key == "volumes":
            return _by_key(base, over, _volume_target)
        if key in ("secrets", "configs"):
            return _by_key(base, over, _secret_key)
        if key in _UNIQUE_LISTS:
            out = list(base)
            for item in over:
                if item not in out:
                    out.append(item)
            return out
        return list(base) + list(over)
    return copy.deepcopy(over)


def merge_mapping(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if k in out and out[k] is not None and v is not None and not k.startswith("x-"):
            out[k] = merge_values(out[k], v, k)
        else:
            out[k] = copy.deepcopy(v)
    return out


def merge_services(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """One service's definition with another laid over it (``build: .`` short forms made long first)."""
    b, o = dict(base), dict(over)
    for d in (b, o):
        if isinstance(d.get("build"), str):
            d["build"] = {"context": d["build"]}
    return merge_mapping(b, o)


def merge_documents(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A whole compose document merged onto another (services one by one, top-level sections by name)."""
    out = dict(base)
    for section, value in over.items():
        if section == "services" and isinstance(value, dict):
            services = dict(out.get("services") or {})
            for name, svc in value.items():
                if name in services and isinstance(services[name], dict) and isinstance(svc, dict):
                    services[name] = merge_services(services[name], svc)
                else:
                    services[name] = copy.deepcopy(svc)
            out["services"] = services
        elif section in ("networks", "volumes", "secrets", "configs") and isinstance(value, dict):
            merged = dict(out.get(section) or {})
            for name, obj in value.items():
                if isinstance(merged.get(name), dict) and isinstance(obj, dict):
                    merged[name] = merge_mapping(merged[name], obj)
                else:
                    merged[name] = copy.deepcopy(obj)
            out[section] = merged
        elif section == "include":
            out[section] = list(out.get(section) or []) + list(value or [])
        else:
            out[section] = copy.deepcopy(value)
    return out
