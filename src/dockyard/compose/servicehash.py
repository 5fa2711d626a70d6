"""Compose v2's service config hash (``com.docker.compose.config-hash``, ``config --hash``), byte for byte.

Compose 2.29.7's ServiceHash (pkg/compose/hash.go) clears build, pull_policy, scale, deploy.replicas and
depends_on, ``json.Marshal``s the rest of compose-go v2.2.0's ``types.ServiceConfig`` and takes the sha256 of
those bytes. Equal hashes are what lets a project brought up by Compose v2 stay up under dockyard compose
(and the reverse), so the bytes have to be Go's: the struct's fields in declaration order under their json
tags, ``omitempty`` as Go applies it (zero scalars, nil pointers and empty slices/maps left out, structs held by
value never), map keys sorted, ``<``/``>``/``&`` escaped, float32 in its shortest form, and the types' own
MarshalJSON methods (byte sizes as quoted decimals, durations as Go durations, extra_hosts as a sorted
``host=ip`` list, a single ulimit as a number, a required env file as its path). Extensions (``x-*``) are
``json:"-"`` and never count. Compose 2.30.2 and later clear profiles too; 2.29.7, which dockyard follows,
does not.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from dockyard.compose.convert import duration_ns, size_bytes
from dockyard.compose.merge import list_to_mapping

# A field: (json key, kind, omitempty). Kinds: "str", "int", "f32", "bool", "pbool" (*bool), "puint"
# (*uint64/*uint32), "bytes" (UnitBytes), "dur" (Duration), "pdur" (*Duration), "strs", "test" (a healthcheck
# test: a string is ["CMD-SHELL", it]), "cmd" (ShellCommand),
# "strmap" (map[string]string), "nullmap" (map[string]*string), "hosts" (HostsList), "envfiles", "ulimits",
# "devices" (short or long device mappings), "any"; or ("ptr", fields) / ("val", fields) for a struct held by
# pointer / by value, ("list", fields) for a slice of structs, ("netmap", fields) for map[string]*struct.
_F = tuple[tuple[str, Any, bool], ...]


def _fields(*items: tuple[str, Any] | tuple[str, Any, bool]) -> _F:
    return tuple((i[0], i[1], True if len(i) == 2 else i[2]) for i in items)  # type: ignore[misc]


_FILEREF = _fields(("source", "str"), ("target", "str"), ("uid", "str"), ("gid", "str"), ("mode", "puint"))
_UPDATE = _fields(("parallelism", "puint"), ("delay", "dur"), ("failure_action", "str"), ("monitor", "dur"),
                  ("max_failure_ratio", "f32"), ("order", "str"))
_DEVICE_REQUEST = _fields(("capabilities", "strs"), ("driver", "str"), ("count", "count"), ("device_ids", "strs"))
_RESOURCE = _fields(("cpus", "f32"), ("memory", "bytes"), ("pids", "int"), ("devices", ("list", _DEVICE_REQUEST)),
                    ("generic_resources", ("list", _fields(("discrete_resource_spec", ("ptr", _fields(
                        ("kind", "str", False), ("value", "int", False))))))))
_DEPLOY = _fields(
    ("mode", "str"), ("labels", "strmap"), ("update_config", ("ptr", _UPDATE)),
    ("rollback_config", ("ptr", _UPDATE)),
    ("resources", ("val", _fields(("limits", ("ptr", _RESOURCE)), ("reservations", ("ptr", _RESOURCE))))),
    ("restart_policy", ("ptr", _fields(("condition", "str"), ("delay", "pdur"), ("max_attempts", "puint"),
                                       ("window", "pdur")))),
    ("placement", ("val", _fields(("constraints", "strs"), ("preferences", ("list", _fields(("spread", "str")))),
                                  ("max_replicas_per_node", "int")))),
    ("endpoint_mode", "str"))
_THROTTLE = _fields(("Path", "str", False), ("Rate", "bytes", False))
_BLKIO = _fields(("weight", "int"), ("weight_device", ("list", _fields(("Path", "str", False),
                                                                       ("Weight", "int", False)))),
                 ("device_read_bps", ("list", _THROTTLE)), ("device_read_iops", ("list", _THROTTLE)),
                 ("device_write_bps", ("list", _THROTTLE)), ("device_write_iops", ("list", _THROTTLE)))
_HEALTH = _fields(("test", "test"), ("timeout", "pdur"), ("interval", "pdur"), ("retries", "puint"),
                  ("start_period", "pdur"), ("start_interval", "pdur"), ("disable", "bool"))
_PORT = _fields(("name", "str"), ("mode", "str"), ("host_ip", "str"), ("target", "int"), ("published", "str"),
                ("protocol", "str"), ("app_protocol", "str"))
_VOLUME = _fields(
    ("type", "str"), ("source", "str"), ("target", "str"), ("read_only", "bool"), ("consistency", "str"),
    ("bind", ("ptr", _fields(("selinux", "str"), ("propagation", "str"), ("create_host_path", "bool")))),
    ("volume", ("ptr", _fields(("nocopy", "bool"), ("subpath", "str")))),
    ("tmpfs", ("ptr", _fields(("size", "bytes"), ("mode", "int")))))
_SERVICE_NET = _fields(("priority", "int"), ("aliases", "strs"), ("ipv4_address", "str"), ("ipv6_address", "str"),
                       ("link_local_ips", "strs"), ("mac_address", "str"), ("driver_opts", "strmap"))
_WATCH = _fields(("path", "str", False), ("action", "str", False), ("target", "str"), ("ignore", "strs"))
# types.ServiceConfig of compose-go v2.2.0, minus what ServiceHash clears (build, depends_on, pull_policy,
# scale); name is `json:"-"`.
_SERVICE = _fields(
    ("profiles", "strs"), ("annotations", "strmap"), ("attach", "pbool"),
    ("develop", ("ptr", _fields(("watch", ("list", _WATCH))))), ("blkio_config", ("ptr", _BLKIO)),
    ("cap_add", "strs"), ("cap_drop", "strs"), ("cgroup_parent", "str"), ("cgroup", "str"), ("cpu_count", "int"),
    ("cpu_percent", "f32"), ("cpu_period", "int"), ("cpu_quota", "int"), ("cpu_rt_period", "int"),
    ("cpu_rt_runtime", "int"), ("cpus", "f32"), ("cpuset", "str"), ("cpu_shares", "int"), ("command", "cmd", False),
    ("configs", ("list", _FILEREF)), ("container_name", "str"),
    ("credential_spec", ("ptr", _fields(("config", "str"), ("file", "str"), ("registry", "str")))),
    ("deploy", ("ptr", _DEPLOY)), ("device_cgroup_rules", "strs"), ("devices", "devices"), ("dns", "strs"),
    ("dns_opt", "strs"), ("dns_search", "strs"), ("dockerfile", "str"), ("domainname", "str"),
    ("entrypoint", "cmd", False), ("environment", "nullmap"), ("env_file", "envfiles"), ("expose", "strs"),
    ("extends", ("ptr", _fields(("file", "str"), ("service", "str")))), ("external_links", "strs"),
    ("extra_hosts", "hosts"), ("group_add", "strs"), ("hostname", "str"), ("healthcheck", ("ptr", _HEALTH)),
    ("image", "str"), ("init", "pbool"), ("ipc", "str"), ("isolation", "str"), ("labels", "strmap"),
    ("links", "strs"), ("logging", ("ptr", _fields(("driver", "str"), ("options", "strmap")))),
    ("log_driver", "str"), ("log_opt", "strmap"), ("mem_limit", "bytes"), ("mem_reservation", "bytes"),
    ("memswap_limit", "bytes"), ("mem_swappiness", "bytes"), ("mac_address", "str"), ("net", "str"),
    ("network_mode", "str"), ("networks", ("netmap", _SERVICE_NET)), ("oom_kill_disable", "bool"),
    ("oom_score_adj", "int"), ("pid", "str"), ("pids_limit", "int"), ("platform", "str"),
    ("ports", ("list", _PORT)), ("privileged", "bool"), ("read_only", "bool"), ("restart", "str"),
    ("runtime", "str"), ("secrets", ("list", _FILEREF)), ("security_opt", "strs"), ("shm_size", "bytes"),
    ("stdin_open", "bool"), ("stop_grace_period", "pdur"), ("stop_signal", "str"), ("storage_opt", "strmap"),
    ("sysctls", "strmap"), ("tmpfs", "strs"), ("tty", "bool"), ("ulimits", "ulimits"), ("user", "str"),
    ("userns_mode", "str"), ("uts", "str"), ("volume_driver", "str"), ("volumes", ("list", _VOLUME)),
    ("volumes_from", "strs"), ("working_dir", "str"))


class _Omit:
    pass


_OMIT: Any = _Omit()


def go_string(text: str) -> str:
    """A JSON string as Go's encoding/json writes it (HTML-safe, U+2028/U+2029 escaped)."""
    out = json.dumps(text, ensure_ascii=False)
    return (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def go_float32(value: Any) -> str:
    """A float32 as Go's encoding/json writes it: the shortest decimal that reads back as the same float32."""
    from decimal import Decimal

    f32 = struct.unpack("f", struct.pack("f", float(value)))[0]
    if f32 == 0:
        return "0"
    text = repr(f32)
    for digits in range(1, 10):
        candidate = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(candidate)))[0] == f32:
            text = candidate
            break
    if 1e-6 <= abs(f32) < 1e21:
        return format(Decimal(text), "f")
    mantissa, _, exp = f"{Decimal(text):e}".partition("e")
    return f"{mantissa}e{exp[0]}{exp[1:].lstrip('0').rjust(2, '0')}"


def _go_duration(value: Any) -> str:
    from dockyard.compose.canonical import go_duration

    return go_duration(duration_ns(value))


def _scalar(value: Any, kind: str, omitempty: bool) -> Any:
    """The JSON text of one field (``_OMIT``: Go leaves it out)."""
    if kind in ("pbool", "puint", "pdur"):  # pointers: left out when nil only
        if value is None:
            return _OMIT
        if kind == "pbool":
            return "true" if value else "false"
        if kind == "puint":
            return str(int(value, 8) if isinstance(value, str) else int(value))
        return go_string(_go_duration(value))
    if kind == "cmd":  # never omitted: nil is null, [] stays []
        return "null" if value is None else "[" + ",".join(go_string(str(x)) for x in value) + "]"
    if value is None:
        return _OMIT if omitempty else _zero(kind)
    if kind == "str":
        text = _text(value)
        return _OMIT if omitempty and text == "" else go_string(text)
    if kind in ("int", "count"):
        if kind == "count" and str(value).lower() == "all":
            return "-1"
        n = int(float(value)) if isinstance(value, str) and not value.lstrip("-").isdigit() else int(value)
        return _OMIT if omitempty and n == 0 else str(n)
    if kind == "f32":
        text = go_float32(value)
        return _OMIT if omitempty and text == "0" else text
    if kind == "bool":
        return "true" if value else (_OMIT if omitempty else "false")
    if kind == "bytes":
        n = size_bytes(value)
        return _OMIT if omitempty and not n else f'"{n}"'
    if kind == "dur":
        ns = duration_ns(value)
        return _OMIT if omitempty and not ns else go_string(_go_duration(value))
    if kind == "test":  # HealthCheckTest: a string is run by the shell
        value = ["CMD-SHELL", value] if isinstance(value, str) else value
        kind = "strs"
    if kind == "strs":
        items = [value] if isinstance(value, str) else list(value)
        return "[" + ",".join(go_string(str(x)) for x in items) + "]" if items else _OMIT
    if not value and kind in ("strmap", "nullmap", "hosts", "envfiles", "ulimits", "devices"):
        return _OMIT
    if kind in ("strmap", "nullmap"):
        if isinstance(value, list):  # a KEY=VALUE list the loader left as written (deploy.labels)
            value = list_to_mapping(value)
        return "{" + ",".join(f"{go_string(str(k))}:" + ("null" if v is None else go_string(_text(v)))
                              for k, v in sorted(value.items())) + "}"
    if kind == "hosts":
        items = []
        for host, ip in value.items():
            for one in ip if isinstance(ip, list) else str(ip).split(","):
                items.append(f"{host}={one}")
        return "[" + ",".join(go_string(x) for x in sorted(items)) + "]"
    if kind == "envfiles":
        parts = []
        for item in value:
            spec = {"path": item, "required": True} if isinstance(item, str) else item
            if spec.get("required", True):
                parts.append(go_string(str(spec["path"])))
            else:
                parts.append('{"path":' + go_string(str(spec["path"])) + ',"required":false}')
        return "[" + ",".join(parts) + "]"
    if kind == "ulimits":
        parts = []
        for name, lim in sorted(value.items()):
            if isinstance(lim, dict) and lim.get("single") is None:
                body = _struct(lim, _fields(("soft", "int"), ("hard", "int")))
            else:
                body = str(int(lim["single"] if isinstance(lim, dict) else lim))
            parts.append(f"{go_string(name)}:{body}")
        return "{" + ",".join(parts) + "}"
    if kind == "devices":
        parts = []
        for d in value:
            if isinstance(d, dict):
                spec = d
            else:
                bits = str(d).split(":")
                spec = {"source": bits[0], "target": bits[1] if len(bits) > 1 and bits[1] else bits[0],
                        "permissions": bits[2] if len(bits) > 2 else "rwm"}
            parts.append(_struct(spec, _fields(("source", "str"), ("target", "str"), ("permissions", "str"))))
        return "[" + ",".join(parts) + "]"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _zero(kind: str) -> str:
    return {"str": '""', "int": "0", "count": "0", "bool": "false", "f32": "0", "bytes": '"0"'}.get(kind, "null")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _struct(value: dict[str, Any], fields: _F) -> str:
    parts = []
    for key, kind, omitempty in fields:
        v = _field(value.get(key), kind, omitempty)
        if v is not _OMIT:
            parts.append(f"{go_string(key)}:{v}")
    return "{" + ",".join(parts) + "}"


def _field(value: Any, kind: Any, omitempty: bool) -> Any:
    if isinstance(kind, tuple):
        shape, fields = kind
        if shape == "ptr":
            return _OMIT if value is None else _struct(value, fields)
        if shape == "val":
            return _struct(value or {}, fields)
        if shape == "list":
            return "[" + ",".join(_struct(v or {}, fields) for v in value) + "]" if value else _OMIT
        if shape == "netmap":
            if not value:
                return _OMIT
            return "{" + ",".join(f"{go_string(str(k))}:" + ("null" if v is None else _struct(v, fields))
                                  for k, v in sorted(value.items())) + "}"
    return _scalar(value, kind, omitempty)


def v2_model(service: dict[str, Any]) -> dict[str, Any]:
    """The service as compose-go v2.2.0's loader hands it to ServiceHash (before the clearing)."""
    from dockyard.compose.canonical import v2_service

    return v2_service(service)


def service_json(service: dict[str, Any], env_files_read: bool = True) -> str:
    """Go's ``json.Marshal`` of the service with ServiceHash's fields cleared.

    ``env_files_read=False`` is the service as Compose v2's ``config --hash`` loads it (without environment
    resolution): its env_file list kept and only its own ``environment`` entries. ``up`` reads the files into
    the environment and drops the list, so the two differ for a service with env files, in v2 as here.
    """
    svc = v2_model(service)
    if not env_files_read and "__env_files__" in service:
        svc["env_file"] = service["__env_files__"]
        svc["environment"] = service["__own_environment__"]
    deploy = svc.get("deploy")
    if isinstance(deploy, dict):
        svc["deploy"] = {k: v for k, v in deploy.items() if k != "replicas"}
    return _struct(svc, _SERVICE)


def service_hash(service: dict[str, Any], env_files_read: bool = True) -> str:
    from dockyard.compose.labels import sha256_hex

    return sha256_hex(service_json(service, env_files_read).encode())
