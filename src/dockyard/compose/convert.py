"""A normalized service → the Engine API's container create body (Config, HostConfig, NetworkingConfig).

Every service key the engine can honour maps to the field docker documents for it; durations and sizes
are parsed the way Compose does (``1m30s``, ``512m``).
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.compose import labels as L
from dockyard.compose.errors import ComposeError
from dockyard.compose.project import Project

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.I)


def duration_ns(value: Any) -> int:
    """``1m30s`` / ``500ms`` / a number of seconds → nanoseconds."""
    if isinstance(value, (int, float)):
        return int(value * 1_000_000_000)
    text = str(value).strip()
    if not text:
        return 0
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            raise ComposeError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        if text.isdigit():
            return int(text) * 1_000_000_000
        raise ComposeError(f"invalid duration {text!r}")
    return int(total)


def size_bytes(value: Any) -> int:
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value).strip())
    if not m:
        raise ComposeError(f"invalid size: {value!r}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


class Secrets:
    """Secret/config files the container mounts read-only: (host file, container path); content to upload
    as (container path, content, mode)."""

    def __init__(self, binds: list[tuple[str, str]], uploads: list[tuple[str, bytes, int]]) -> None:
        self.binds = binds
        self.uploads = uploads


def restart_policy(svc: dict[str, Any]) -> dict[str, Any]:
    restart = svc.get("restart")
    if restart:
        name, _, count = str(restart).partition(":")
        policy: dict[str, Any] = {"Name": "" if name == "no" else name}
        if count:
            policy["MaximumRetryCount"] = int(count)
        return policy
    rp = ((svc.get("deploy") or {}).get("restart_policy") or {})
    if rp:
        cond = rp.get("condition", "any")
        name = {"none": "", "on-failure": "on-failure", "any": "always"}.get(cond, cond)
        policy = {"Name": name}
        if rp.get("max_attempts"):
            policy["MaximumRetryCount"] = int(rp["max_attempts"])
        return policy
    return {"Name": ""}


def _healthcheck(hc: dict[str, Any] | None) -> dict[str, Any] | None:
    if hc is None:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    test = hc.get("test")
    if isinstance(test, str):
        out["Test"] = ["CMD-SHELL", test]
    elif test:
        out["Test"] = [str(t) for t in test]
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                     ("start_interval", "StartInterval")):
        if hc.get(key) is not None:
            out[api] = duration_ns(hc[key])
    if hc.get("retries") is not None:
        out["Retries"] = int(hc["retries"])
    return out


def _mounts(project: Project, svc: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    binds: list[str] = []
    mounts: list[dict[str, Any]] = []
    anon: dict[str, Any] = {}
    for v in svc.get("volumes") or []:
        kind = v.get("type", "volume")
        target = v["target"]
        ro = bool(v.get("read_only"))
        if kind == "bind":
            if (v.get("bind") or {}).get("create_host_path", True):
                opts = ["ro" if ro else "rw"]
                prop = (v.get("bind") or {}).get("propagation")
                if prop:
                    opts.append(prop)
                binds.append(f"{v['source']}:{target}:{','.join(opts)}")
            else:
                m = {"Type": "bind", "Source": v["source"], "Target": target, "ReadOnly": ro}
                if (v.get("bind") or {}).get("propagation"):
                    m["BindOptions"] = {"Propagation": v["bind"]["propagation"]}
                mounts.append(m)
        elif kind == "volume":
            source = v.get("source")
            m = {"Type": "volume", "Target": target, "ReadOnly": ro}
            if source:
                m["Source"] = project.volumes[source]["name"] if source in project.volumes else source
            if (v.get("volume") or {}).get("nocopy"):
                m["VolumeOptions"] = {"NoCopy": True}
            if not source:
                anon[target] = {}
            mounts.append(m)
        elif kind == "tmpfs":
            m = {"Type": "tmpfs", "Target": target, "ReadOnly": ro}
            t = v.get("tmpfs") or {}
            tmpfs_opts: dict[str, Any] = {}
            if t.get("size") is not None:
                tmpfs_opts["SizeBytes"] = size_bytes(t["size"])
            if t.get("mode") is not None:
                tmpfs_opts["Mode"] = int(str(t["mode"]), 8) if isinstance(t["mode"], str) else int(t["mode"])
            if tmpfs_opts:
                m["TmpfsOptions"] = tmpfs_opts
            mounts.append(m)
        else:
            raise ComposeError(f"unsupported volume type {kind!r} for service {svc.get('__name__', '')}")
    return binds, mounts, anon


def secret_files(project: Project, svc: dict[str, Any]) -> Secrets:
    import os

    binds: list[tuple[str, str]] = []
    uploads: list[tuple[str, bytes, int]] = []
    for kind, root in (("secrets", "/run/secrets/"), ("configs", "/")):
        for ref in svc.get(kind) or []:
            src = ref["source"]
            top = getattr(project, kind)[src]
            target = str(ref.get("target") or src)
            if not target.startswith("/"):
                target = root + target
            mode = int(str(ref["mode"]), 8) if isinstance(ref.get("mode"), str) else int(ref.get("mode") or 0o444)
            if top.get("external"):
                raise ComposeError(f"unsupported external {kind[:-1]} {top.get('name') or src}")
            if top.get("file"):
                if not os.path.exists(top["file"]):
                    raise ComposeError(f"{kind[:-1]} {src}: file {top['file']} not found")
                binds.append((top["file"], target))
            elif top.get("environment") is not None:
                value = project.environment.get(str(top["environment"]), "")
                uploads.append((target, value.encode(), mode))
            elif top.get("content") is not None:
                uploads.append((target, str(top["content"]).encode(), mode))
    return Secrets(binds, uploads)


def _env_list(svc: dict[str, Any], extra: dict[str, str] | None = None) -> list[str]:
    env = dict(svc.get("environment") or {})
    env.update(extra or {})
    return [f"{k}={v}" for k, v in env.items() if v is not None]


def endpoint_config(project: Project, svc_name: str, svc: dict[str, Any], net_key: str,
                    container: str, oneoff: bool = False) -> dict[str, Any]:
    spec = (svc.get("networks") or {}).get(net_key) or {}
    aliases = [] if oneoff else [svc_name]
    aliases += [str(a) for a in spec.get("aliases") or [] if str(a) not in aliases]
    ep: dict[str, Any] = {"Aliases": aliases}
    ipam: dict[str, Any] = {}
    if oneoff:  # a one-off container shares the service's network, not its fixed addresses
        spec = {k: v for k, v in spec.items() if k not in ("ipv4_address", "ipv6_address", "mac_address")}
    if spec.get("ipv4_address"):
        ipam["IPv4Address"] = str(spec["ipv4_address"])
    if spec.get("ipv6_address"):
        ipam["IPv6Address"] = str(spec["ipv6_address"])
    if ipam:
        ep["IPAMConfig"] = ipam
    if spec.get("mac_address"):
        ep["MacAddress"] = str(spec["mac_address"])
    if spec.get("driver_opts"):
        ep["DriverOpts"] = dict(spec["driver_opts"])
    if spec.get("gw_priority") is not None:
        ep["GwPriority"] = int(spec["gw_priority"])
    return ep


def sorted_networks(svc: dict[str, Any]) -> list[str]:
    """Networks by priority (highest first), then name, as v2 connects them."""
    nets = svc.get("networks") or {}
    return sorted(nets, key=lambda n: (-int(((nets[n] or {}).get("priority")) or 0), n))


def create_body(project: Project, svc_name: str, svc: dict[str, Any], number: int, name: str,
                image_id: str, config_hash: str, oneoff: bool = False,
                resolve_container: Any = None) -> dict[str, Any]:
    """The create request of one container of ``svc``; ``resolve_container(service)`` names a running one."""
    lbl = dict(svc.get("labels") or {})
    lbl.update({
        L.PROJECT: project.name, L.SERVICE: svc_name, L.NUMBER: str(number),
        L.ONEOFF: "True" if oneoff else "False", L.WORKING_DIR: project.working_dir,
        L.CONFIG_FILES: ",".join(project.config_files), L.CONFIG_HASH: config_hash,
        L.DEPENDS_ON: L.depends_on_label(svc), L.IMAGE: image_id, L.VERSION: L.COMPOSE_VERSION,
    })
    binds, mounts, anon = _mounts(project, svc)
    sec = secret_files(project, svc)
    binds += [f"{host}:{target}:ro" for host, target in sec.binds]
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for e in svc.get("expose") or []:
        port, _, proto = e.partition("/")
        a, _, b = port.partition("-")
        for p in range(int(a), int(b or a) + 1):
            exposed[f"{p}/{proto or 'tcp'}"] = {}
    for p in svc.get("ports") or []:
        key = f"{p['target']}/{p.get('protocol', 'tcp')}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": str(p.get("host_ip") or ""),
                                             "HostPort": str(p.get("published") or "")})
    hc: dict[str, Any] = {
        "Binds": binds or None, "Mounts": mounts or None, "PortBindings": bindings or None,
        "RestartPolicy": restart_policy(svc),
        "CapAdd": svc.get("cap_add"), "CapDrop": svc.get("cap_drop"),
        "Privileged": bool(svc.get("privileged")), "ReadonlyRootfs": bool(svc.get("read_only")),
        "Dns": svc.get("dns"), "DnsSearch": svc.get("dns_search"), "DnsOptions": svc.get("dns_opt"),
        "ExtraHosts": [f"{h}:{ip}" for h, ip in (svc.get("extra_hosts") or {}).items()] or None,
        "Init": svc.get("init"), "Sysctls": svc.get("sysctls"), "SecurityOpt": svc.get("security_opt"),
        "GroupAdd": [str(g) for g in svc.get("group_add") or []] or None,
    }
    if svc.get("tmpfs"):
        hc["Tmpfs"] = {t.split(":", 1)[0]: (t.split(":", 1)[1] if ":" in t else "") for t in svc["tmpfs"]}
    if svc.get("ulimits"):
        hc["Ulimits"] = [{"Name": k, "Soft": int(v.get("soft", 0)), "Hard": int(v.get("hard", 0))}
                         for k, v in svc["ulimits"].items()]
    if svc.get("logging"):
        hc["LogConfig"] = {"Type": svc["logging"].get("driver") or "json-file",
                           "Config": {k: str(v) for k, v in (svc["logging"].get("options") or {}).items()}}
    for key, api in (("pid", "PidMode"), ("ipc", "IpcMode"), ("cgroup_parent", "CgroupParent"),
                     ("userns_mode", "UsernsMode"), ("runtime", "Runtime"), ("uts", "UTSMode")):
        if svc.get(key):
            hc[api] = str(svc[key])
    if svc.get("shm_size") is not None:
        hc["ShmSize"] = size_bytes(svc["shm_size"])
    limits = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {})
    reservations = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {})
    if svc.get("mem_limit") is not None or limits.get("memory") is not None:
        hc["Memory"] = size_bytes(svc.get("mem_limit") if svc.get("mem_limit") is not None else limits["memory"])
    if svc.get("mem_reservation") is not None or reservations.get("memory") is not None:
        hc["MemoryReservation"] = size_bytes(svc.get("mem_reservation") if svc.get("mem_reservation") is not None
                                             else reservations["memory"])
    if svc.get("memswap_limit") is not None:
        hc["MemorySwap"] = size_bytes(svc["memswap_limit"]) if svc["memswap_limit"] != -1 else -1
    cpus = svc.get("cpus") if svc.get("cpus") is not None else limits.get("cpus")
    if cpus is not None:
        hc["NanoCpus"] = int(float(cpus) * 1e9)
    if svc.get("cpu_shares") is not None:
        hc["CpuShares"] = int(svc["cpu_shares"])
    pids = svc.get("pids_limit") if svc.get("pids_limit") is not None else limits.get("pids")
    if pids is not None:
        hc["PidsLimit"] = int(pids)
    if svc.get("oom_score_adj") is not None:
        hc["OomScoreAdj"] = int(svc["oom_score_adj"])
    if svc.get("devices"):
        devs = []
        for d in svc["devices"]:
            if isinstance(d, dict):
                devs.append({"PathOnHost": d["source"], "PathInContainer": d.get("target") or d["source"],
                             "CgroupPermissions": d.get("permissions") or "rwm"})
            else:
                parts = str(d).split(":")
                devs.append({"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
                             "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm"})
        hc["Devices"] = devs
    resolve = resolve_container or (lambda s: L.container_name(project.name, s, 1))
    if svc.get("volumes_from"):
        vf = []
        for item in svc["volumes_from"]:
            src, _, mode = str(item).partition(":")
            if src.startswith("container:"):
                target = src[len("container:"):]
            else:
                target = resolve(src)
            vf.append(f"{target}:{mode}" if mode else target)
        hc["VolumesFrom"] = vf
    links = []
    for link in svc.get("links") or []:
        s, _, alias = str(link).partition(":")
        links.append(f"{resolve(s)}:{alias or s}")
    for link in svc.get("external_links") or []:
        s, _, alias = str(link).partition(":")
        links.append(f"{s}:{alias or s}")
    if links:
        hc["Links"] = links
    endpoints: dict[str, Any] = {}
    mode = str(svc.get("network_mode") or "")
    if mode:
        if mode.startswith("service:"):
            hc["NetworkMode"] = "container:" + resolve(mode[len("service:"):])
        else:
            hc["NetworkMode"] = mode
    else:
        nets = sorted_networks(svc)
        for n in nets:
            endpoints[project.networks[n]["name"]] = endpoint_config(project, svc_name, svc, n, name, oneoff)
        hc["NetworkMode"] = project.networks[nets[0]]["name"] if nets else "none"
    cfg: dict[str, Any] = {
        "Image": image_ref(project, svc_name, svc), "Labels": lbl, "Env": _env_list(svc),
        "Cmd": svc.get("command"), "Entrypoint": svc.get("entrypoint"),
        "Hostname": svc.get("hostname") or "", "Domainname": svc.get("domainname") or "",
        "User": str(svc.get("user") or ""), "WorkingDir": svc.get("working_dir") or "",
        "Tty": bool(svc.get("tty")), "OpenStdin": bool(svc.get("stdin_open")),
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": exposed or None, "Volumes": anon or None, "HostConfig": hc,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    if svc.get("mac_address"):
        cfg["MacAddress"] = str(svc["mac_address"])
    if svc.get("stop_signal"):
        cfg["StopSignal"] = str(svc["stop_signal"])
    if svc.get("stop_grace_period") is not None:
        cfg["StopTimeout"] = duration_ns(svc["stop_grace_period"]) // 1_000_000_000
    health = _healthcheck(svc.get("healthcheck"))
    if health is not None:
        cfg["Healthcheck"] = health
    if svc.get("platform"):
        cfg["__platform__"] = str(svc["platform"])
    return cfg


def image_ref(project: Project, svc_name: str, svc: dict[str, Any]) -> str:
    return str(svc.get("image") or L.default_image_name(project.name, svc_name))


def replicas(svc: dict[str, Any]) -> int:
    if svc.get("scale") is not None:
        return int(svc["scale"])
    r = (svc.get("deploy") or {}).get("replicas")
    return 1 if r is None else int(r)
