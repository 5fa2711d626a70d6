"""Binds, Mounts, Tmpfs and volumes → OCI mounts plus the `Mounts` list inspect shows.

Parsing happens at create (bad specs are a 400 before anything exists); host directories of `-v` binds are
created at start, as docker does.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidParameter

_PROPAGATIONS = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
VolumeResolver = Callable[[str, str], str]  # (name, container_id) -> host path of the volume's data


@dataclass
class MountPlan:
    oci_mounts: list[dict[str, Any]] = field(default_factory=list)
    inspect: list[dict[str, Any]] = field(default_factory=list)

    def covers(self, destination: str) -> bool:
        return any(m["destination"] == destination for m in self.oci_mounts)


@dataclass
class _Mount:
    type: str
    source: str
    target: str
    readonly: bool = False
    propagation: str = ""
    mode: str = ""
    create_source: bool = False
    tmpfs_opts: list[str] = field(default_factory=list)
    name: str = ""


def _bad(spec: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{spec}'" + (f": {why}" if why else ""))


def _parse_bind(spec: str) -> _Mount:
    parts = spec.split(":")
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2:
        if parts[1].startswith("/"):
            src, dst, mode = parts[0], parts[1], ""
        else:
            src, dst, mode = "", parts[0], parts[1]
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise _bad(spec)
    if not dst.startswith("/"):
        raise _bad(spec, f"invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must "
                         "be absolute")
    ro = False
    propagation = ""
    for opt in [o for o in mode.split(",") if o]:
        if opt in ("ro", "rw"):
            ro = opt == "ro"
        elif opt in _PROPAGATIONS:
            propagation = opt
        elif opt in ("z", "Z", "nocopy", "consistent", "cached", "delegated"):
            continue
        else:
            raise _bad(spec, f"invalid mode: {mode}")
    if dst == "/":
        raise _bad(spec, "invalid specification: destination can't be '/'")
    if not src:
        return _Mount("volume", "", os.path.normpath(dst), ro, "", mode)
    if src.startswith("/"):
        return _Mount("bind", os.path.normpath(src), os.path.normpath(dst), ro, propagation or "rprivate", mode,
                      create_source=True)
    return _Mount("volume", "", os.path.normpath(dst), ro, "", mode or "z", name=src)


def _parse_api_mount(m: dict[str, Any]) -> _Mount:
    typ = m.get("Type") or "volume"
    target = m.get("Target") or m.get("Destination") or ""
    if not target.startswith("/"):
        raise InvalidParameter(f"invalid mount config for type \"{typ}\": invalid mount path: '{target}' mount "
                               "path must be absolute")
    ro = bool(m.get("ReadOnly"))
    if typ == "bind":
        src = m.get("Source") or ""
        if not src.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount path: '{src}' mount "
                                   "path must be absolute")
        create = bool((m.get("BindOptions") or {}).get("CreateMountpoint"))
        if not create and not os.path.exists(src):
            raise InvalidParameter(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
        prop = (m.get("BindOptions") or {}).get("Propagation") or "rprivate"
        return _Mount("bind", src, target, ro, prop, create_source=create)
    if typ == "tmpfs":
        if m.get("Source"):
            raise InvalidParameter("invalid mount config for type \"tmpfs\": field Source must not be specified")
        opts = (m.get("TmpfsOptions") or {})
        tmpfs_opts = []
        if opts.get("SizeBytes"):
            tmpfs_opts.append(f"size={int(opts['SizeBytes'])}")
        if opts.get("Mode"):
            tmpfs_opts.append(f"mode={int(opts['Mode']):o}")
        return _Mount("tmpfs", "", target, ro, tmpfs_opts=tmpfs_opts)
    if typ == "volume":
        return _Mount("volume", "", target, ro, "", "z", name=m.get("Source") or "")
    raise InvalidParameter(f"invalid mount config: mount type unknown: \"{typ}\"")


def validate(host_config: dict[str, Any]) -> None:
    """Parse every mount source so a bad one fails create with docker's 400."""
    targets: set[str] = set()
    for spec in host_config.get("Binds") or []:
        t = _parse_bind(spec).target
        if t in targets:
            raise InvalidParameter(f"Duplicate mount point: {t}")
        targets.add(t)
    for m in host_config.get("Mounts") or []:
        t = _parse_api_mount(m).target
        if t in targets:
            raise InvalidParameter(f"Duplicate mount point: {t}")
        targets.add(t)


def volume_names(host_config: dict[str, Any], config: dict[str, Any]) -> list[tuple[str, str]]:
    """(name or "", target) of every volume the container uses ("" = anonymous, named at create)."""
    out = []
    for spec in host_config.get("Binds") or []:
        m = _parse_bind(spec)
        if m.type == "volume":
            out.append((m.name, m.target))
    for raw in host_config.get("Mounts") or []:
        m = _parse_api_mount(raw)
        if m.type == "volume":
            out.append((m.name, m.target))
    taken = {t for _, t in out} | {_parse_api_mount(r).target for r in host_config.get("Mounts") or []}
    taken |= {_parse_bind(s).target for s in host_config.get("Binds") or []}
    for target in (config.get("Volumes") or {}):
        if os.path.normpath(target) not in taken:
            out.append(("", os.path.normpath(target)))
    return out


def own_targets(host_config: dict[str, Any]) -> set[str]:
    """The targets a container's own Binds and Mounts take (they win over --volumes-from and VOLUME)."""
    out = {_parse_bind(s).target for s in host_config.get("Binds") or []}
    return out | {_parse_api_mount(m).target for m in host_config.get("Mounts") or []}


def inherited_specs(host_config: dict[str, Any], anon_volumes: dict[str, str], inherited: list[str],
                    mode: str) -> list[str]:
    """What ``--volumes-from`` this container gives another, as bind specs ("name-or-path:target:mode"):
    its volumes (named and anonymous) and binds, and what it inherited itself; ``mode`` "ro"/"rw" overrides
    each mount's own, "" keeps it (docker's parseVolumesFrom)."""
    mounts = [_parse_bind(s) for s in host_config.get("Binds") or []]
    mounts += [m for m in (_parse_api_mount(r) for r in host_config.get("Mounts") or []) if m.type != "tmpfs"]
    mounts += [_parse_bind(s) for s in inherited]
    out: list[str] = []
    seen: set[str] = set()
    for m in mounts:
        name = m.name or anon_volumes.get(m.target, "")
        source = m.source if m.type == "bind" else name
        if not source or m.target in seen:
            continue
        seen.add(m.target)
        out.append(f"{source}:{m.target}:{mode or ('ro' if m.readonly else 'rw')}")
    for target, name in anon_volumes.items():
        if target not in seen:
            seen.add(target)
            out.append(f"{name}:{target}:{mode or 'rw'}")
    return out


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """"container[:ro|:rw]" → (container, mode)."""
    ref, sep, mode = spec.partition(":")
    if not ref or (sep and mode not in ("ro", "rw")):
        raise InvalidParameter(f"invalid mode: {mode}" if ref else f"invalid volumes-from specification: '{spec}'")
    return ref, mode


def plan(host_config: dict[str, Any], config: dict[str, Any], anon_volumes: dict[str, str],
         resolve_volume: VolumeResolver | None, container_id: str, inherited: list[str] | None = None,
         make_sources: bool = True) -> MountPlan:
    """The mounts to give the runtime; ``anon_volumes`` maps target → the name chosen at create;
    ``inherited``: the --volumes-from mounts resolved at create (bind specs). Without ``make_sources``
    (create's description for inspect) a missing bind source is left to the start to make."""
    mounts: list[_Mount] = [_parse_bind(s) for s in host_config.get("Binds") or []]
    mounts += [_parse_api_mount(m) for m in host_config.get("Mounts") or []]
    seen = {m.target for m in mounts}
    for m in (_parse_bind(s) for s in inherited or []):
        if m.target not in seen:
            seen.add(m.target)
            m.create_source = False
            mounts.append(m)
    for target, name in anon_volumes.items():
        if target not in seen:
            mounts.append(_Mount("volume", "", target, False, "", "", name=name))
    out = MountPlan()
    for m in mounts:
        if m.type == "volume":
            name = m.name or anon_volumes.get(m.target, "")
            if resolve_volume is None or not name:
                raise InvalidParameter(f"volume {m.name or m.target}: no volume service")
            m.source = resolve_volume(name, container_id)
            m.name = name
        if m.type in ("bind", "volume"):
            if make_sources and m.create_source and not os.path.exists(m.source):
                os.makedirs(m.source, 0o755, exist_ok=True)
            opts = ["rbind", m.propagation or "rprivate"]
            if m.readonly:
                opts.append("ro")
            out.oci_mounts.append({"destination": m.target, "type": "bind", "source": m.source, "options": opts})
            entry: dict[str, Any] = {"Type": m.type, "Source": m.source, "Destination": m.target,
                                     "Mode": m.mode, "RW": not m.readonly,
                                     "Propagation": m.propagation if m.type == "bind" else ""}
            if m.type == "volume":
                entry = {"Type": "volume", "Name": m.name, "Source": m.source, "Destination": m.target,
                         "Driver": "local", "Mode": m.mode, "RW": not m.readonly, "Propagation": ""}
            out.inspect.append(entry)
        else:  # tmpfs from Mounts
            opts = ["nosuid", "nodev", "noexec", *m.tmpfs_opts] + (["ro"] if m.readonly else [])
            out.oci_mounts.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
            out.inspect.append({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": "",
                                "RW": not m.readonly, "Propagation": ""})
    for target, options in (host_config.get("Tmpfs") or {}).items():
        opts = ["nosuid", "nodev", "noexec"] + [o for o in (options or "").split(",") if o]
        out.oci_mounts.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts})
    return out


# what the engine mounts into every container (docker keeps these in its init layer, so diff never shows them)
ENGINE_PATHS = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/dev/pts", "/dev/shm",
                          "/dev/console", "/proc", "/sys", "/.dockerenv", "/sbin/docker-init"})


def populate_volumes(plan: MountPlan, rootfs: str) -> None:
    """docker's copy-up: an empty volume mounted over image content starts as a copy of it (unless nocopy)."""
    from dockyard.runtime.spec import resolve_in_root

    for m in plan.inspect:
        if m["Type"] != "volume" or "nocopy" in (m.get("Mode") or "").split(","):
            continue
        try:
            if os.listdir(m["Source"]):
                continue
            src = resolve_in_root(rootfs, m["Destination"])
            if not os.path.isdir(src) or not os.listdir(src):
                continue
        except OSError:
            continue
        subprocess.run(["cp", "-a", "--", src + "/.", m["Source"]], capture_output=True, check=False)
