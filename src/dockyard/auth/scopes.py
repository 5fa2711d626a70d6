"""Which scope a request needs: decided from its method and path alone, before any handler runs.

`read` grants every GET/HEAD; a resource scope grants its own routes with every method; `admin` grants all
(and is the only scope exempt from the policy). Routes of no resource (info, events, system df) are readable
by any valid token; changing them (prune-all, auth administration) needs `admin`.
"""

from __future__ import annotations

SCOPES = ("read", "containers", "images", "networks", "volumes", "admin")

# first path segment -> the resource scope owning it
_RESOURCE = {
    "containers": "containers", "exec": "containers", "commit": "containers",
    "images": "images", "build": "images", "distribution": "images", "auth": "images", "dockyard": "admin",
    "networks": "networks",
    "volumes": "volumes",
}
_READ_METHODS = ("GET", "HEAD")


def resource_of(path: str) -> str | None:
    """The resource scope owning ``path`` (unversioned), None for system routes."""
    first = path.lstrip("/").split("/", 1)[0]
    return _RESOURCE.get(first)


def permits(scopes: frozenset[str], method: str, path: str) -> bool:
    if "admin" in scopes:
        return True
    resource = resource_of(path)
    if method in _READ_METHODS:
        if "read" in scopes or (resource is not None and resource in scopes):
            return True
        return resource is None and bool(scopes)
    return resource is not None and resource in scopes


def needed(method: str, path: str) -> str:
    """The scope to name in a refusal."""
    resource = resource_of(path)
    if method in _READ_METHODS:
        return "read" if resource is None else f"read or {resource}"
    return resource or "admin"


def parse(value: str | list[str] | None) -> frozenset[str]:
    """A token's scopes: the space-separated `scope` string of RFC 6749, or a list (`scp` of some issuers)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    return frozenset(str(v) for v in value)
