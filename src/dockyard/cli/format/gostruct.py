"""Go struct shapes for `inspect -f`: docker decodes inspect JSON into typed structs, so `{{.IPAM.Config}}`
prints `[{10.1.0.0/24  10.1.0.1 map[]}]` (fields in declaration order, absent ones as zero values), not a map.

Only the nested objects users commonly print are typed; everything else stays a JSON map.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Shape:
    """A Go struct: (Go field name, JSON key, zero value or nested spec) in declaration order."""

    def __init__(self, *fields: tuple[str, str, Any]) -> None:
        self.fields = fields


class ListOf:
    def __init__(self, item: Shape) -> None:
        self.item = item


class MapOf:
    def __init__(self, item: Shape) -> None:
        self.item = item


class GoStruct(dict):  # type: ignore[type-arg]
    """A JSON object standing for a Go struct; JSON output keeps the daemon's keys and order."""

    shape: Shape

    def get(self, name: str, default: Any = None) -> Any:
        for go_name, key, zero in self.shape.fields:
            if go_name == name:
                value = dict.get(self, key)
                return _zero(zero) if value is None else value  # Go decodes null into the zero value
        return default

    def __gostr__(self, go_str: Callable[[Any], str]) -> str:
        return "{" + " ".join(go_str(self.get(go_name)) for go_name, _, _ in self.shape.fields) + "}"


def _zero(spec: Any) -> Any:
    if isinstance(spec, Shape):
        return typed({}, spec)
    if isinstance(spec, ListOf):
        return []
    if isinstance(spec, MapOf):
        return {}
    return spec


def typed(value: Any, spec: Any) -> Any:
    """``value`` with the objects ``spec`` names turned into GoStructs (a dict spec types some keys only)."""
    if isinstance(spec, Shape) and isinstance(value, dict):
        inner = {key: sub for _, key, sub in spec.fields}
        out = GoStruct({k: typed(v, inner.get(k)) for k, v in value.items()})
        out.shape = spec
        return out
    if isinstance(spec, ListOf) and isinstance(value, list):
        return [typed(v, spec.item) for v in value]
    if isinstance(spec, MapOf) and isinstance(value, dict):
        return {k: typed(v, spec.item) for k, v in value.items()}
    if isinstance(spec, dict) and isinstance(value, dict):
        return {k: typed(v, spec.get(k)) for k, v in value.items()}
    return value


_IPAM_CONFIG = Shape(("Subnet", "Subnet", ""), ("IPRange", "IPRange", ""), ("Gateway", "Gateway", ""),
                     ("AuxAddress", "AuxiliaryAddresses", {}))
_ENDPOINT = Shape(("Name", "Name", ""), ("EndpointID", "EndpointID", ""), ("MacAddress", "MacAddress", ""),
                  ("IPv4Address", "IPv4Address", ""), ("IPv6Address", "IPv6Address", ""))

# Typed parts of the inspect objects, per kind (network.Inspect, image.InspectResponse).
INSPECT_SHAPES: dict[str, dict[str, Any]] = {
    "network": {
        "IPAM": Shape(("Driver", "Driver", ""), ("Options", "Options", {}), ("Config", "Config", ListOf(_IPAM_CONFIG))),
        "ConfigFrom": Shape(("Network", "Network", "")),
        "Containers": MapOf(_ENDPOINT),
    },
    "image": {
        "RootFS": Shape(("Type", "Type", ""), ("Layers", "Layers", [])),
        "GraphDriver": Shape(("Data", "Data", {}), ("Name", "Name", "")),
    },
}


# volume.Volume: a whole struct (its null maps print as map[])
INSPECT_STRUCTS: dict[str, Shape] = {
    "volume": Shape(("CreatedAt", "CreatedAt", ""), ("Driver", "Driver", ""), ("Labels", "Labels", {}),
                    ("Mountpoint", "Mountpoint", ""), ("Name", "Name", ""), ("Options", "Options", {}),
                    ("Scope", "Scope", "")),
}


# `version --format`: docker's clientVersion and types.Version, whose Go field is APIVersion (JSON ApiVersion)
_SERVER_VERSION = Shape(("Platform", "Platform", {}), ("Components", "Components", []), ("Version", "Version", ""),
                        ("APIVersion", "ApiVersion", ""), ("MinAPIVersion", "MinAPIVersion", ""),
                        ("GitCommit", "GitCommit", ""), ("GoVersion", "GoVersion", ""), ("Os", "Os", ""),
                        ("Arch", "Arch", ""), ("KernelVersion", "KernelVersion", ""),
                        ("Experimental", "Experimental", False), ("BuildTime", "BuildTime", ""))
_CLIENT_VERSION = Shape(("Platform", "Platform", {}), ("Version", "Version", ""), ("APIVersion", "ApiVersion", ""),
                        ("DefaultAPIVersion", "DefaultAPIVersion", ""), ("GitCommit", "GitCommit", ""),
                        ("GoVersion", "GoVersion", ""), ("Os", "Os", ""), ("Arch", "Arch", ""),
                        ("BuildTime", "BuildTime", ""), ("Context", "Context", ""))
INSPECT_STRUCTS["version"] = Shape(("Client", "Client", _CLIENT_VERSION), ("Server", "Server", _SERVER_VERSION))


def typed_inspect(kind: str, value: Any) -> Any:
    """An inspect object of ``kind`` ("network", "image", …) ready for a template; unknown kinds unchanged."""
    struct = INSPECT_STRUCTS.get(kind)
    if struct is not None:
        return typed(value, struct)
    shape = INSPECT_SHAPES.get(kind)
    return typed(value, shape) if shape else value
