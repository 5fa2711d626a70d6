"""The JSON shapes clients read: `GET /containers/{id}/json` (inspect) and `GET /containers/json` (summary)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dockyard.containers.state import Container, parse_rfc3339, status_text

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService

_NETWORK_SETTINGS_DEFAULTS: dict[str, Any] = {
    "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": False,
    "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
    "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
    "Networks": {},
}


_ENDPOINT_DEFAULTS: dict[str, Any] = {
    "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None, "GwPriority": 0,
    "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None,
}
# what only exists while the container runs (docker's cleanOperationalData on release)
_OPERATIONAL = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": ""}


def network_settings(c: Container) -> dict[str, Any]:
    """Inspect's NetworkSettings: live while running; after a stop only the networks' configuration stays."""
    if c.state.Running or c.state.Paused:
        return {**_NETWORK_SETTINGS_DEFAULTS, **(c.network_settings or {})}
    # Stopped or never started: the networks it is configured for (the network service records them at create
    # and on connect/disconnect), without what only exists while it runs.
    nets = (c.network_settings or {}).get("Networks") or {}
    # never started: what is there is the configuration itself (a MAC asked for at create or connect)
    cleared = _OPERATIONAL if c.state.StartedAt[:4] not in ("", "0001") else {}
    return {**_NETWORK_SETTINGS_DEFAULTS,
            "Networks": {name: {**_ENDPOINT_DEFAULTS, **(ep or {}), **cleared} for name, ep in nets.items()}}


def _graph_driver(svc: ContainerService, c: Container) -> dict[str, Any]:
    base = os.path.join(svc.cfg.data_root, "snapshots", c.id)
    return {"Name": "overlay2", "Data": {"MergedDir": os.path.join(base, "merged"),
                                         "UpperDir": os.path.join(base, "upper"),
                                         "WorkDir": os.path.join(base, "work"), "LowerDir": ""}}


def _mounts(c: Container) -> list[dict[str, Any]]:
    if c.mounts:
        return list(c.mounts)
    out: list[dict[str, Any]] = []
    for spec in c.host_config.get("Binds") or []:
        parts = spec.split(":")
        if len(parts) >= 2 and parts[0].startswith("/"):
            mode = parts[2] if len(parts) > 2 else ""
            out.append({"Type": "bind", "Source": parts[0], "Destination": parts[1], "Mode": mode,
                        "RW": "ro" not in mode.split(","), "Propagation": "rprivate"})
    return out


def inspect(svc: ContainerService, c: Container, size: bool = False) -> dict[str, Any]:
    st = c.state.to_dict()
    state_dir = svc.state_dir(c.id)
    exec_ids = svc.exec_ids(c.id)
    out: dict[str, Any] = {
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": list(c.args), "State": st,
        "Image": c.image_id, "ResolvConfPath": os.path.join(state_dir, "resolv.conf"),
        "HostnamePath": os.path.join(state_dir, "hostname"), "HostsPath": os.path.join(state_dir, "hosts"),
        "LogPath": svc.log_path(c) if (c.host_config.get("LogConfig") or {}).get("Type") != "none" else "",
        "Name": "/" + c.name, "RestartCount": c.restart_count, "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": exec_ids or None,
        "HostConfig": dict(c.host_config), "GraphDriver": _graph_driver(svc, c), "Mounts": _mounts(c),
        "Config": dict(c.config), "NetworkSettings": network_settings(c),
    }
    if size:
        out["SizeRw"] = svc.size(c)
        out["SizeRootFs"] = out["SizeRw"] + _image_size(svc, c)
    return out


def _image_size(svc: ContainerService, c: Container) -> int:
    try:
        return int(svc.images.get_by_id(c.image_id).size)
    except Exception:  # noqa: BLE001
        return 0


def ports(c: Container) -> list[dict[str, Any]]:
    """The summary's Ports list: published bindings, and exposed ports without one."""
    out: list[dict[str, Any]] = []
    published = (network_settings(c).get("Ports") or {}) if c.state.Running else {}
    seen: set[str] = set()
    for key, bindings in sorted(published.items()):
        port, _, proto = key.partition("/")
        seen.add(key)
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in bindings:
            out.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                        "PublicPort": int(b.get("HostPort") or 0), "Type": proto or "tcp"})
    for key in sorted((c.config.get("ExposedPorts") or {}).keys()):
        if key not in seen:
            port, _, proto = key.partition("/")
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out


def state_word(c: Container) -> str:
    st = c.state
    if st.Status == "removing":
        return "removing"
    if st.Paused:
        return "paused"
    if st.Restarting:
        return "restarting"
    if st.Running:
        return "running"
    if st.Dead:
        return "dead"
    if st.Status == "created" and not c.has_been_started and st.FinishedAt.startswith("0001"):
        return "created"
    return "exited"


def summary(svc: ContainerService, c: Container, with_size: bool = False) -> dict[str, Any]:
    # as moby's list: an argument with a space is shown in single quotes
    command = " ".join([c.path, *(f"'{a}'" if " " in a else a for a in c.args)]) if c.path else ""
    ns = network_settings(c)
    out: dict[str, Any] = {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.image, "ImageID": c.image_id, "Command": command,
        "Created": int(parse_rfc3339(c.created)), "Ports": ports(c), "Labels": dict(c.config.get("Labels") or {}),
        "State": state_word(c), "Status": status_text(c.state),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "bridge"},
        "NetworkSettings": {"Networks": ns.get("Networks") or {}}, "Mounts": _mounts(c),
    }
    if with_size:
        out["SizeRw"] = svc.size(c)
        out["SizeRootFs"] = out["SizeRw"] + _image_size(svc, c)
    return out
