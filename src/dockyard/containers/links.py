"""Legacy container links (`--link name:alias`, HostConfig.Links) on the default bridge, as docker makes them.

Docker records a link as "/target:/self/alias". At start the linked container must run; the new container gets
the target's address in /etc/hosts (alias, hostname and name) and docker's link variables: ALIAS_NAME,
ALIAS_ENV_* (the target's Env but HOME and PATH) and ALIAS_PORT[_<port>_<proto>[_ADDR|_PORT|_PROTO]] for its
exposed ports. Old compose files and tutorials still rely on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidParameter, NotFound, SystemError_


@dataclass
class Link:
    alias: str  # the name the parent knows it by
    name: str  # the target's name, no leading '/'
    hostname: str
    ip: str
    env: list[str]
    exposed: list[str]  # "80/tcp" …


def on_user_network(host_config: dict[str, Any]) -> bool:
    """Whether the container's network mode is a user-defined network: there docker's ``--link`` is an
    endpoint alias (EndpointsConfig.Links, answered by the embedded DNS), HostConfig.Links is kept as given
    and makes no legacy link (dockerd skips registering it)."""
    mode = str(host_config.get("NetworkMode") or "default")
    return mode not in ("default", "bridge", "host", "none") and not mode.startswith("container:")


def parse(spec: str) -> tuple[str, str]:
    """"name[:alias]" or docker's stored "/name:/parent/alias" → (name, alias)."""
    target, _, alias = spec.partition(":")
    target = target.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else target
    if not target or not alias:
        raise InvalidParameter(f"invalid link specification: '{spec}'")
    return target, alias


def normalize(specs: list[str] | None, self_name: str, get: Callable[[str], Any]) -> list[str] | None:
    """Links as docker stores them ("/target:/self/alias"), each target looked up now (docker's 404)."""
    if not specs:
        return None
    out = []
    for spec in specs:
        target, alias = parse(spec)
        try:
            get(target)
        except NotFound as e:  # dockerd answers 400 here, not 404
            raise InvalidParameter(f"could not get container for {target}: {e}") from None
        out.append(f"/{target}:/{self_name}/{alias}")
    return out


def resolve(specs: list[str] | None, self_name: str, get: Callable[[str], Any]) -> list[Link]:
    """At start: the linked containers, which must be running on the default bridge."""
    links = []
    for spec in specs or []:
        target, alias = parse(spec)
        try:
            child = get(target)
        except NotFound:
            raise SystemError_(f"Could not get container for {target}") from None
        if not child.state.Running:
            raise SystemError_(f"Cannot link to a non running container: /{child.name} AS /{self_name}/{alias}")
        bridge = ((child.network_settings or {}).get("Networks") or {}).get("bridge") or {}
        if not bridge.get("IPAddress"):
            raise SystemError_(f"Cannot link to /{child.name}, as it does not belong to the default network")
        links.append(Link(alias, child.name, child.config.get("Hostname") or child.id[:12], bridge["IPAddress"],
                          list(child.config.get("Env") or []), sorted((child.config.get("ExposedPorts") or {}),
                                                                      key=_port_key)))
    return links


def _port_key(port: str) -> tuple[int, bool, str]:
    """docker's order of a link's ports: by number, tcp first among equal numbers (dockerd 20.10 gives
    ALIAS_PORT=udp://…:53 before tcp 80)."""
    number, _, proto = port.partition("/")
    proto = (proto or "tcp").lower()
    return (int(number) if number.isdigit() else 0, proto != "tcp", proto)


def env(links: list[Link], self_name: str) -> list[str]:
    """docker's link variables (daemon/links.Link.ToEnv)."""
    out: list[str] = []
    for link in links:
        prefix = link.alias.upper().replace("-", "_")
        for i, port in enumerate(link.exposed):
            number, _, proto = port.partition("/")
            proto = proto or "tcp"
            url = f"{proto}://{link.ip}:{number}"
            if i == 0:
                out.append(f"{prefix}_PORT={url}")
            key = f"{prefix}_PORT_{number}_{proto.upper()}"
            out += [f"{key}={url}", f"{key}_ADDR={link.ip}", f"{key}_PORT={number}", f"{key}_PROTO={proto}"]
        out.append(f"{prefix}_NAME=/{self_name}/{link.alias}")
        for item in link.env:
            key, eq, value = item.partition("=")
            if eq and key not in ("HOME", "PATH"):
                out.append(f"{prefix}_ENV_{key}={value}")
    return out


def hosts(links: list[Link]) -> list[str]:
    """ExtraHosts-style "names:ip" entries: the alias, the target's hostname and (if different) its name."""
    out = []
    for link in links:
        names = [link.alias, link.hostname] + ([link.name] if link.name != link.alias else [])
        out.append(f"{' '.join(dict.fromkeys(names))}:{link.ip}")
    return out


def without(specs: list[str] | None, self_name: str, alias: str) -> list[str] | None:
    """HostConfig.Links less the link named /self/alias (DELETE /containers/{self}/{alias}?link=1)."""
    kept = [s for s in specs or [] if parse(s)[1] != alias]
    if len(kept) == len(specs or []):
        raise NotFound(f"Could not find link /{self_name}/{alias}")
    return kept or None
