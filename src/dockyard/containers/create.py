"""The create request → a normalized Config/HostConfig pair, merged with the image config as dockerd does.

All validation that can fail does so here, before any record, snapshot or directory exists.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING, Any

from dockyard.containers import links, mounts, spec
from dockyard.containers.state import Container, now_rfc3339
from dockyard.errors import InvalidParameter, NotFound
from dockyard.util.ids import new_id, random_name

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
HEALTH_ON_FAILURE = ("none", "restart", "stop", "kill")
HEALTH_LABEL = "dockyard.health-on-failure"

_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {},
}

_HOST_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "bridge",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
    "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
    "ShmSize": 67108864, "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
    "Init": None, "Tmpfs": None, "Sysctls": None, "Mounts": None,
}


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def validate_restart_policy(policy: dict[str, Any] | None, auto_remove: bool = False) -> dict[str, Any]:
    policy = dict(policy or {})
    name = policy.get("Name") or "no"
    if name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                               "'on-failure', or 'unless-stopped'")
    count = int(policy.get("MaximumRetryCount") or 0)
    if count < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if auto_remove and name != "no":
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    return {"Name": name, "MaximumRetryCount": count}


def health_on_failure(config: dict[str, Any], host_config: dict[str, Any]) -> str:
    """dockyard's extension: what to do with an unhealthy container (HostConfig field or label)."""
    value = host_config.get("HealthOnFailure") or (config.get("Labels") or {}).get(HEALTH_LABEL) or "none"
    if value not in HEALTH_ON_FAILURE:
        raise InvalidParameter(f"invalid health-on-failure action {value!r}: use none, restart, stop or kill")
    return str(value)


def _duration_ok(hc_: dict[str, Any], key: str) -> None:
    v = hc_.get(key)
    if v is not None and int(v) != 0 and int(v) < 1_000_000:
        what = {"Interval": "Interval", "Timeout": "Timeout", "StartPeriod": "StartPeriod",
                "StartInterval": "StartInterval"}[key]
        raise InvalidParameter(f"{what} in Healthcheck cannot be less than 1ms")


def merge_image_env(user: list[str], image: list[str]) -> list[str]:
    """Config.Env at create, as dockerd merges it: the user's entries as given (a bare `Foo` too), then each
    image entry whose name the user did not give. (A bare name unsets only in the process's environment.)"""
    if not user:
        return list(image)
    names = {e.partition("=")[0] for e in user}
    return list(user) + [e for e in image if e.partition("=")[0] not in names]


def normalize(body: dict[str, Any], image_config: dict[str, Any], default_runtime: str, log_driver: str,
              log_opts: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Config, HostConfig, NetworkingConfig) ready to store, with the image's defaults filled in."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be an object")
    host_in = body.get("HostConfig") or {}
    if not isinstance(host_in, dict):
        raise InvalidParameter("invalid HostConfig")
    net_in = body.get("NetworkingConfig") or {}
    cfg: dict[str, Any] = {**_CONFIG_DEFAULTS, **{k: v for k, v in body.items()
                                                  if k not in ("HostConfig", "NetworkingConfig")}}
    # docker-py's create_container(runtime=…) sends Runtime beside the config, not in HostConfig
    top_runtime = cfg.pop("Runtime", None)
    if top_runtime and not host_in.get("Runtime"):
        host_in = {**host_in, "Runtime": top_runtime}
    img = image_config.get("config") or {}
    if cfg.get("Cmd") is not None and not isinstance(cfg["Cmd"], list):
        cfg["Cmd"] = [str(cfg["Cmd"])]
    if cfg.get("Entrypoint") is not None and not isinstance(cfg["Entrypoint"], list):
        cfg["Entrypoint"] = [str(cfg["Entrypoint"])]
    if cfg.get("Entrypoint") is None:
        cfg["Entrypoint"] = img.get("Entrypoint")
        if not cfg.get("Cmd"):
            cfg["Cmd"] = img.get("Cmd")
    elif cfg["Entrypoint"] in ([], [""]):
        cfg["Entrypoint"] = None  # `--entrypoint ""`: reset, and the image's Cmd is not inherited
    cfg["Env"] = merge_image_env(list(cfg.get("Env") or []), list(img.get("Env") or []))
    if not cfg.get("WorkingDir"):
        cfg["WorkingDir"] = img.get("WorkingDir") or ""
    if not cfg.get("User"):
        cfg["User"] = img.get("User") or ""
    cfg["Labels"] = {**(img.get("Labels") or {}), **(cfg.get("Labels") or {})}
    if img.get("ExposedPorts") or cfg.get("ExposedPorts"):
        cfg["ExposedPorts"] = {**(img.get("ExposedPorts") or {}), **(cfg.get("ExposedPorts") or {})}
    if img.get("Volumes") or cfg.get("Volumes"):
        cfg["Volumes"] = {**(img.get("Volumes") or {}), **(cfg.get("Volumes") or {})}
    if not cfg.get("StopSignal") and img.get("StopSignal"):
        cfg["StopSignal"] = img["StopSignal"]
    if not cfg.get("Healthcheck") and img.get("Healthcheck"):
        cfg["Healthcheck"] = img["Healthcheck"]
    if cfg.get("Healthcheck"):
        for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
            _duration_ok(cfg["Healthcheck"], key)
        if int(cfg["Healthcheck"].get("Retries") or 0) < 0:
            raise InvalidParameter("Retries in Healthcheck cannot be negative")
    if not spec.command_line(cfg):
        raise InvalidParameter("no command specified")

    hc: dict[str, Any] = {**_HOST_DEFAULTS, **host_in}
    lc = dict(hc.get("LogConfig") or {})
    log_type = lc.get("Type") or log_driver
    given = dict(lc.get("Config") or {})
    # the daemon's log-opts apply to containers using the daemon's driver (docker's mergeAndVerifyLogConfig)
    hc["LogConfig"] = {"Type": log_type,
                       "Config": {**log_opts, **given} if log_type == log_driver and log_type != "none" else given}
    if hc["LogConfig"]["Type"] not in ("json-file", "local", "none"):
        raise InvalidParameter(f"logger: no log driver named '{hc['LogConfig']['Type']}' is registered")
    if not hc.get("NetworkMode") or hc["NetworkMode"] == "default":
        hc["NetworkMode"] = "bridge"
    hc["RestartPolicy"] = validate_restart_policy(hc.get("RestartPolicy"), bool(hc.get("AutoRemove")))
    runtime = hc.get("Runtime")
    if not runtime or (runtime == "runc" and "Runtime" not in host_in):
        runtime = default_runtime
    if runtime not in ("dockyard", "runc", "crun"):
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
    hc["Runtime"] = runtime
    if not hc.get("ShmSize"):
        hc["ShmSize"] = 67108864
    if int(hc["ShmSize"]) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    health_on_failure(cfg, hc)
    spec.validate_resources(hc)
    spec.security_options(hc)
    mounts.validate(hc)
    if hc.get("NetworkMode", "").startswith("container:") and (hc.get("PortBindings") or hc.get("PublishAllPorts")):
        raise InvalidParameter("conflicting options: port publishing and the container type network mode")
    endpoints = dict((net_in or {}).get("EndpointsConfig") or {})
    if "default" in endpoints:  # the docker CLI names the default network "default"
        endpoints.setdefault("bridge", endpoints.pop("default"))
        if "bridge" in endpoints and endpoints["bridge"] is None:
            endpoints["bridge"] = {}
    mac = cfg.get("MacAddress")
    mode = hc["NetworkMode"]
    if mac and mode not in ("host", "none") and not mode.startswith("container:"):
        # API < 1.44 puts the MAC beside the config; docker moves it to the primary network's endpoint
        ep = dict(endpoints.get(mode) or {})
        ep.setdefault("MacAddress", mac)
        endpoints[mode] = ep
    return cfg, hc, {**dict(net_in or {}), "EndpointsConfig": endpoints}


_UPDATABLE = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod",
              "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "OomKillDisable", "MemorySwappiness")


def updated_host_config(current: dict[str, Any], body: Any) -> dict[str, Any]:
    """`docker update`: the new HostConfig (resources and restart policy), validated like create."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid update body")
    hc = dict(current)
    for k in _UPDATABLE:
        if k in body and body[k] not in (None, "", 0):
            hc[k] = body[k]
    if body.get("NanoCpus"):
        hc["CpuQuota"], hc["CpuPeriod"] = 0, 0
    if body.get("CpuQuota") or body.get("CpuPeriod"):
        hc["NanoCpus"] = 0
    if body.get("Memory") and not body.get("MemorySwap") and int(current.get("MemorySwap") or 0) > 0 \
            and int(current["MemorySwap"]) < int(body["Memory"]):
        hc["MemorySwap"] = 0
    if body.get("RestartPolicy") and (body["RestartPolicy"].get("Name") or ""):
        hc["RestartPolicy"] = validate_restart_policy(body["RestartPolicy"], bool(hc.get("AutoRemove")))
    spec.validate_resources(hc)
    return hc


def changes_resources(body: dict[str, Any]) -> bool:
    """Whether an update body touches the cgroup resources (else the runtime need not be asked)."""
    return any(body.get(k) not in (None, "", 0) for k in _UPDATABLE)


def _port_key(spec: str) -> str:
    port, _, proto = str(spec).partition("/")
    if not port or not all(p.isdigit() for p in port.split("-")):
        raise InvalidParameter(f"invalid port specification: {spec!r}")
    return f"{port}/{proto or 'tcp'}"


def port_changes(body: dict[str, Any]) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """`update --publish-add/--publish-rm` (moby#21282): PortBindingsAdd (PortBindings shape), PortBindingsRemove
    (container ports, "80" or "80/tcp")."""
    add_raw = body.get("PortBindingsAdd") or {}
    remove_raw = body.get("PortBindingsRemove") or []
    if not isinstance(add_raw, dict) or not isinstance(remove_raw, list):
        raise InvalidParameter("PortBindingsAdd must be an object and PortBindingsRemove a list")
    add: dict[str, list[dict[str, str]]] = {}
    for key, bindings in add_raw.items():
        add[_port_key(key)] = [{"HostIp": str((b or {}).get("HostIp") or ""),
                                "HostPort": str((b or {}).get("HostPort") or "")} for b in (bindings or [{}])]
    return add, [_port_key(k) for k in remove_raw]


def merged_port_bindings(current: dict[str, Any], add: dict[str, list[dict[str, str]]], remove: list[str],
                         strict: bool) -> dict[str, Any]:
    """HostConfig.PortBindings after an update, so the change survives a restart."""
    out = {k: list(v or []) for k, v in current.items()}
    for key in remove:
        if key not in out and strict:
            raise NotFound(f"port {key} is not published")
        out.pop(key, None)
    for key, bindings in add.items():
        out[key] = out.get(key, []) + [b for b in bindings if b not in out.get(key, [])]
    return out


def new_record(svc: ContainerService, name: str | None, body: Any) -> Container:
    """A validated, not yet stored container record (image resolved, config merged, volumes named)."""
    if name:
        name = validate_name(name)
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be an object")
    image_ref = body.get("Image") or ""
    if not image_ref:
        raise InvalidParameter("Config cannot be empty in order to create a container")
    image = svc.images.resolve(image_ref)
    config, host_config, net_cfg = normalize(body, image.config, svc.cfg.default_runtime, svc.cfg.log_driver,
                                             svc.cfg.log_opts_given)
    svc.net.validate(host_config)
    cid = new_id()
    if not config.get("Hostname"):
        # docker: a container on the host's network takes the host's name, else its short ID
        host_net = (host_config.get("NetworkMode") or "") == "host"
        config["Hostname"] = socket.gethostname() if host_net else cid[:12]
    config["Image"] = image_ref
    c = Container(id=cid, name=name or random_name(), created=now_rfc3339(), image_id=image.id, image=image_ref,
                  config=config, host_config=host_config, runtime=host_config["Runtime"], networking_config=net_cfg)
    argv = spec.command_line(config)
    c.path, c.args = argv[0], argv[1:]
    if config.get("Healthcheck") and (config["Healthcheck"].get("Test") or ["NONE"])[0] != "NONE":
        c.state.Health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    if not links.on_user_network(host_config):
        host_config["Links"] = links.normalize(host_config.get("Links"), c.name, svc.get)
    own = mounts.own_targets(host_config)
    for spec_ in host_config.get("VolumesFrom") or []:
        ref, mode = mounts.parse_volumes_from(spec_)
        try:
            src = svc.get(ref)
        except NotFound as e:  # dockerd: 400 "No such container: …"
            raise InvalidParameter(str(e)) from None
        for inherited in mounts.inherited_specs(src.host_config, src.anon_volumes, src.volumes_from, mode):
            target = inherited.rsplit(":", 2)[1]
            if target not in own and all(v.rsplit(":", 2)[1] != target for v in c.volumes_from):
                c.volumes_from.append(inherited)
    taken = {v.rsplit(":", 2)[1] for v in c.volumes_from}
    for vol_name, target in mounts.volume_names(host_config, config):
        if not vol_name and target not in taken:
            c.anon_volumes[target] = new_id()
    return c
