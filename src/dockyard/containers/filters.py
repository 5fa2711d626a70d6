"""`GET /containers/json` filtering, ordering and limits with docker's semantics and error wording."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dockyard.containers.state import Container, parse_api_time, parse_rfc3339
from dockyard.containers.views import network_settings, state_word
from dockyard.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService

KEYS = {"id", "name", "label", "status", "ancestor", "exited", "before", "since", "health", "network", "volume",
        "publish", "expose", "isolation", "is-task"}
STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}
HEALTH = {"starting", "healthy", "unhealthy", "none"}


def _label_match(labels: dict[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


def _port_match(c: Container, want: str, published: bool) -> bool:
    port, _, proto = want.partition("/")
    proto = proto or "tcp"
    if published:
        for key, bindings in (network_settings(c).get("Ports") or {}).items():
            p, _, pr = key.partition("/")
            if pr != proto or not bindings:
                continue
            if p == port or any(b.get("HostPort") == port for b in bindings):
                return True
        return False
    lo, _, hi = port.partition("-")
    for key in (c.config.get("ExposedPorts") or {}):
        p, _, pr = key.partition("/")
        if pr == proto and (p == port or (hi and lo.isdigit() and int(lo) <= int(p) <= int(hi))):
            return True
    return False


def _ancestor_ids(svc: ContainerService, refs: list[str]) -> set[str]:
    ids: set[str] = set()
    for ref in refs:
        try:
            ids.add(svc.images.resolve(ref).id)
        except Exception:  # noqa: BLE001 - an unknown image simply matches nothing
            pass
    return ids


def select(svc: ContainerService, all_: bool, limit: int | None, filters: dict[str, list[str]]) -> list[Container]:
    for key in filters:
        if key not in KEYS:
            raise InvalidParameter(f"invalid filter '{key}'")
    for v in filters.get("status", []):
        if v not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={v}'")
    for v in filters.get("health", []):
        if v not in HEALTH:
            raise InvalidParameter(f"invalid filter 'health={v}'")
    exited_codes = set()
    for v in filters.get("exited", []):
        try:
            exited_codes.add(int(v))
        except ValueError:
            raise InvalidParameter(f"invalid filter 'exited={v}'") from None
    containers = sorted(svc.all(), key=lambda c: (parse_rfc3339(c.created), c.id), reverse=True)
    before = since = None
    if filters.get("before"):
        try:
            before = parse_rfc3339(svc.get(filters["before"][0]).created)
        except NotFound:
            raise InvalidParameter(f"No such container: {filters['before'][0]}") from None
    if filters.get("since"):
        try:
            since = parse_rfc3339(svc.get(filters["since"][0]).created)
        except NotFound:
            raise InvalidParameter(f"No such container: {filters['since'][0]}") from None
    ancestors = _ancestor_ids(svc, filters.get("ancestor", [])) if filters.get("ancestor") else set()
    show_all = all_ or bool(limit and limit > 0) or bool(filters.get("status")) or bool(filters.get("exited"))
    out = []
    for c in containers:
        word = state_word(c)
        if not show_all and word not in ("running", "paused", "restarting"):
            continue
        if filters.get("id") and not any(c.id.startswith(v) for v in filters["id"]):
            continue
        if filters.get("name") and not any(name_matches(v, c.name) for v in filters["name"]):
            continue
        labels = c.config.get("Labels") or {}
        if filters.get("label") and not all(_label_match(labels, v) for v in filters["label"]):
            continue
        if filters.get("status") and word not in filters["status"]:
            continue
        if exited_codes and (word != "exited" or c.state.ExitCode not in exited_codes):
            continue
        if filters.get("ancestor") and c.image_id not in ancestors and c.image not in filters["ancestor"]:
            continue
        created = parse_rfc3339(c.created)
        if before is not None and created >= before:
            continue
        if since is not None and created <= since:
            continue
        if filters.get("health"):
            hs = (c.state.Health or {}).get("Status", "none") if c.state.Health else "none"
            if hs not in filters["health"]:
                continue
        if filters.get("network"):
            nets = network_settings(c).get("Networks") or {}
            names = set(nets) | {n.get("NetworkID", "") for n in nets.values()} | {c.host_config.get("NetworkMode")}
            if not any(v in names or any(x and x.startswith(v) for x in names if x) for v in filters["network"]):
                continue
        if filters.get("volume"):
            from dockyard.containers.views import _mounts

            mounts = _mounts(c)
            keys = {m.get("Name", "") for m in mounts} | {m.get("Destination", "") for m in mounts} \
                | {m.get("Source", "") for m in mounts}
            if not any(v in keys for v in filters["volume"]):
                continue
        if filters.get("publish") and not any(_port_match(c, v, True) for v in filters["publish"]):
            continue
        if filters.get("expose") and not any(_port_match(c, v, False) for v in filters["expose"]):
            continue
        if filters.get("is-task") and "true" in filters["is-task"]:
            continue
        out.append(c)
    if limit and limit > 0:
        out = out[:limit]
    return out


def prune_candidates(svc: ContainerService, filters: dict[str, list[str]]) -> list[Container]:
    """Stopped containers matching `until` and `label`/`label!` (docker's prune filters)."""
    for key in filters:
        if key not in ("until", "label", "label!"):
            raise InvalidParameter(f"invalid filter '{key}'")
    until = None
    if filters.get("until"):
        until = parse_api_time(filters["until"][0])
    out = []
    for c in svc.all():
        if c.state.Running or c.state.Paused or c.state.Restarting or c.state.Status == "removing":
            continue
        labels: dict[str, Any] = c.config.get("Labels") or {}
        if until is not None and parse_rfc3339(c.created) >= until:
            continue
        if filters.get("label") and not all(_label_match(labels, v) for v in filters["label"]):
            continue
        if filters.get("label!") and any(_label_match(labels, v) for v in filters["label!"]):
            continue
        out.append(c)
    return out


def name_matches(pattern: str, name: str) -> bool:
    """docker's name filter: a regular expression searched in the name with and without its leading '/'
    (so `^web$` finds "web"); a pattern that does not compile matches nothing, as in docker."""
    try:
        rx = re.compile(pattern)
    except re.error:
        return False
    bare = name.lstrip("/")
    return bool(rx.search("/" + bare) or rx.search(bare))
