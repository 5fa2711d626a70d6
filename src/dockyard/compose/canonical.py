"""The project in Compose v2's canonical form, the one ``compose config`` prints.

Compose v2 prints its typed model (compose-go's structs): every object's keys come in the order of the
struct's fields, maps are sorted, empty values are left out, durations are Go durations (``1m30s``),
byte sizes are plain byte counts, a shell-form command or healthcheck test is a list, extra_hosts is a
sorted ``host=ip`` list. The rules here were read from compose-go v2.2.0's ``types`` package (field order
and tags, its MarshalYAML/MarshalJSON methods; the compose-go of Compose 2.29.7, the release ``compose
version`` names) and from that compose's ``config`` command; fields only later releases have sit where
those releases put them. The internal model (which the config hash and the create bodies read) is left
as it is and only rendered differently.

YAML is written as yaml.v3/v4 writes it: 2-space indent with sequences indented under their key, map
keys in its natural order (digit runs compared as numbers), a string that would read back as another
type double-quoted. JSON as Go's ``json.MarshalIndent(.., "", "  ")``: top-level keys sorted (a map),
``<``/``>``/``&`` escaped, no final newline. Every ``$`` of an interpolated model is printed as ``$$``.

Extensions (``x-*`` keys) are compose-go's ``Extensions`` maps, tagged ``yaml:",inline" json:"-"``: in YAML
they follow an object's fields (sorted as yaml.v3 sorts map keys), at every level; in JSON only the
project's own (top-level) ones appear, since Project.MarshalJSON adds them to its map and every other
type leaves them out.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import yaml

from dockyard.compose.convert import duration_ns, size_bytes
from dockyard.compose.project import Project

# -- the typed model: struct field orders (compose-go types) --------------------------------------------
# A spec is a tuple: ("struct", ((key, spec), ...)), ("map", spec), ("list", spec) or a scalar kind:
# "str", "int", "float", "bool", "duration", "bytes", "cmd" (shell command), "any".
_S = "str"
_ANY = "any"
_STRMAP = ("map", _S)
_STRS = ("list", _S)
_NULLMAP = ("map", _ANY)  # map[string]*string: a missing value stays null


def _struct(*fields: tuple[str, Any]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return ("struct", fields)


_ULIMIT = ("ulimit", None)
_FILEREF = _struct(("source", _S), ("target", _S), ("uid", _S), ("gid", _S), ("mode", "filemode"))
_DURATION = "duration"
_RESOURCE = _struct(("cpus", "float"), ("memory", "bytes"), ("pids", "int"), ("devices", ("list", _ANY)),
                    ("generic_resources", ("list", _ANY)))
_UPDATE = _struct(("parallelism", "int"), ("delay", _DURATION), ("failure_action", _S), ("monitor", _DURATION),
                  ("max_failure_ratio", "float"), ("order", _S))
_DEPLOY = _struct(
    ("mode", _S), ("replicas", "int"), ("labels", _STRMAP), ("update_config", _UPDATE), ("rollback_config", _UPDATE),
    ("resources", _struct(("limits", _RESOURCE), ("reservations", _RESOURCE))),
    ("restart_policy", _struct(("condition", _S), ("delay", _DURATION), ("max_attempts", "int"),
                               ("window", _DURATION))),
    ("placement", _struct(("constraints", _STRS), ("preferences", ("list", _ANY)),
                          ("max_replicas_per_node", "int"))),
    ("endpoint_mode", _S))
_BUILD = _struct(
    ("context", _S), ("dockerfile", _S), ("dockerfile_inline", _S), ("entitlements", _STRS), ("args", _NULLMAP),
    ("provenance", _S), ("sbom", _S), ("ssh", ("list", _ANY)), ("labels", _STRMAP), ("cache_from", _STRS),
    ("cache_to", _STRS), ("no_cache", "bool"), ("no_cache_filter", _STRS), ("additional_contexts", _STRMAP),
    ("pull", "bool"), ("extra_hosts", "hosts"), ("isolation", _S), ("network", _S), ("target", _S),
    ("secrets", ("list", _FILEREF)), ("shm_size", "bytes"), ("tags", _STRS), ("ulimits", ("map", _ULIMIT)),
    ("platforms", _STRS), ("privileged", "bool"))
_HEALTH = _struct(("test", "test"), ("timeout", _DURATION), ("interval", _DURATION), ("retries", "int"),
                  ("start_period", _DURATION), ("start_interval", _DURATION), ("disable", "bool"))
_PORT = _struct(("name", _S), ("mode", _S), ("host_ip", _S), ("target", "int"), ("published", _S),
                ("protocol", _S), ("app_protocol", _S))
_VOLUME = _struct(
    ("type", _S), ("source", _S), ("target", _S), ("read_only", "bool"), ("consistency", _S),
    ("bind", ("keep", _struct(("selinux", _S), ("propagation", _S), ("create_host_path", "bool"),
                              ("recursive", _S)))),
    ("volume", ("keep", _struct(("labels", _STRMAP), ("nocopy", "bool"), ("subpath", _S)))),
    ("tmpfs", ("keep", _struct(("size", "bytes"), ("mode", "int")))),
    ("image", ("keep", _struct(("subpath", _S)))))
_SERVICE_NET = ("nullable", _struct(
    ("priority", "int"), ("aliases", _STRS), ("ipv4_address", _S), ("ipv6_address", _S),
    ("link_local_ips", _STRS), ("mac_address", _S), ("driver_opts", _STRMAP), ("gw_priority", "int"),
    ("interface_name", _S)))
_DEPENDS = _struct(("condition", _S), ("restart", "bool"), ("required", "required"))
_WATCH = _struct(("path", _S), ("action", _S), ("target", _S), ("exec", ("map", _ANY)), ("include", _STRS),
                 ("ignore", _STRS), ("initial_sync", "bool"))
_SERVICE = _struct(
    ("profiles", _STRS), ("annotations", _STRMAP), ("attach", "bool"), ("build", _BUILD),
    ("develop", _struct(("watch", ("list", _WATCH)))), ("blkio_config", ("map", _ANY)), ("cap_add", _STRS),
    ("cap_drop", _STRS), ("cgroup_parent", _S), ("cgroup", _S), ("cpu_count", "int"), ("cpu_percent", "float"),
    ("cpu_period", "int"), ("cpu_quota", "int"), ("cpu_rt_period", "int"), ("cpu_rt_runtime", "int"),
    ("cpus", "float"), ("cpuset", _S), ("cpu_shares", "int"), ("command", "cmd"),
    ("configs", ("list", _FILEREF)), ("container_name", _S), ("credential_spec", ("map", _S)),
    ("depends_on", ("map", _DEPENDS)), ("deploy", _DEPLOY), ("device_cgroup_rules", _STRS),
    ("devices", ("list", _ANY)), ("dns", _STRS), ("dns_opt", _STRS), ("dns_search", _STRS), ("dockerfile", _S),
    ("domainname", _S), ("entrypoint", "cmd"), ("provider", ("map", _ANY)), ("environment", _NULLMAP),
    ("env_file", ("list", _ANY)), ("expose", _STRS), ("extends", ("map", _S)), ("external_links", _STRS),
    ("extra_hosts", "hosts"), ("group_add", _STRS), ("gpus", ("list", _ANY)), ("hostname", _S),
    ("healthcheck", _HEALTH), ("image", _S), ("init", "bool"), ("ipc", _S), ("isolation", _S),
    ("labels", _STRMAP), ("label_file", _STRS), ("links", _STRS),
    ("logging", _struct(("driver", _S), ("options", _STRMAP))), ("log_driver", _S), ("log_opt", _STRMAP),
    ("mem_limit", "bytes"), ("mem_reservation", "bytes"), ("memswap_limit", "bytes"),
    ("mem_swappiness", "bytes"), ("mac_address", _S), ("models", ("map", _ANY)), ("net", _S),
    ("network_mode", _S), ("networks", ("map", _SERVICE_NET)), ("oom_kill_disable", "bool"),
    ("oom_score_adj", "int"), ("pid", _S), ("pids_limit", "int"), ("platform", _S), ("ports", ("list", _PORT)),
    ("privileged", "bool"), ("pull_policy", "pull_policy"), ("read_only", "bool"), ("restart", _S),
    ("runtime", _S), ("scale", "int"), ("secrets", ("list", _FILEREF)), ("security_opt", _STRS),
    ("shm_size", "bytes"), ("stdin_open", "bool"), ("stop_grace_period", _DURATION), ("stop_signal", _S),
    ("storage_opt", _STRMAP), ("sysctls", _STRMAP), ("tmpfs", _STRS), ("tty", "bool"),
    ("ulimits", ("map", _ULIMIT)), ("use_api_socket", "bool"), ("user", _S), ("userns_mode", _S), ("uts", _S),
    ("volume_driver", _S), ("volumes", ("list", _VOLUME)), ("volumes_from", _STRS), ("working_dir", _S),
    ("pre_start", ("list", _ANY)), ("post_start", ("list", _ANY)), ("pre_stop", ("list", _ANY)))
_IPAM = _struct(("driver", _S), ("config", ("list", _struct(
    ("subnet", _S), ("gateway", _S), ("ip_range", _S), ("aux_addresses", _STRMAP)))), ("options", _STRMAP))
_NETWORK = _struct(("name", _S), ("driver", _S), ("driver_opts", _STRMAP), ("ipam", _IPAM), ("external", "bool"),
                   ("internal", "bool"), ("attachable", "bool"), ("labels", _STRMAP), ("enable_ipv4", "bool"),
                   ("enable_ipv6", "bool"))
_VOLUME_TOP = _struct(("name", _S), ("driver", _S), ("driver_opts", _STRMAP), ("external", "bool"),
                      ("labels", _STRMAP))
_FILEOBJ_FIELDS = (("name", _S), ("file", _S), ("environment", _S), ("content", _S), ("external", "bool"),
                   ("labels", _STRMAP), ("driver", _S), ("driver_opts", _STRMAP), ("template_driver", _S))
_SECRET = _struct(*_FILEOBJ_FIELDS)
_CONFIG = _struct(*_FILEOBJ_FIELDS)

_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n"}


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): ``1m30s``, ``500ms``, ``1h0m0s``, ``1.5s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _frac(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _frac(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _frac(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + str(part).rjust(digits, "0").rstrip("0")


def _float(value: Any) -> Any:
    f = float(value)
    return int(f) if f.is_integer() else f


def _shape(value: Any, spec: Any, json_form: bool) -> Any:
    """``value`` in the typed form ``spec`` describes (``_OMIT`` when Go would leave it out)."""
    if isinstance(spec, tuple):
        kind = spec[0]
        if kind == "struct":
            if not isinstance(value, dict):
                return value
            out: dict[str, Any] = {}
            known = dict(spec[1])
            for key, sub in spec[1]:
                if key in value:
                    v = _shape(value[key], sub, json_form)
                    if v is not _OMIT:
                        out[key] = v
            for key in sorted((k for k in value if k not in known and not k.startswith("__")), key=_NATURAL):
                if json_form and key.startswith("x-"):
                    continue  # compose-go's Extensions are `json:"-"` below the top level
                out[key] = value[key]  # extensions (x-…) and keys the table does not know, after the fields
            return out if out else _OMIT
        if kind == "keep":  # a pointer to a struct: present, even empty, when set
            v = _shape(value, spec[1], json_form)
            return {} if v is _OMIT and value is not None else v
        if kind == "nullable":  # a pointer: nil is null, an empty mapping an empty struct
            if value is None:
                return None
            v = _shape(value, spec[1], json_form)
            return {} if v is _OMIT else v
        if kind == "map":
            if not isinstance(value, dict) or not value:
                return _OMIT if not value else value
            shaped = {}
            for k, v in value.items():
                sv = _shape(v, spec[1], json_form)
                shaped[str(k)] = None if sv is _OMIT else sv
            return shaped
        if kind == "list":
            if not value:
                return _OMIT
            items = [_shape(v, spec[1], json_form) for v in value]
            return [({} if v is _OMIT else v) for v in items]
        if kind == "ulimit":  # `nproc: 512` stays a number; a soft/hard pair is a pair, even when equal
            if isinstance(value, dict):
                if value.get("single") is not None:
                    return int(value["single"])
                return {"soft": int(value.get("soft") or 0), "hard": int(value.get("hard") or 0)}
            return int(value)
    if value is None:
        return _OMIT
    if spec == "required":
        return bool(value)
    if spec == "cmd":
        return [str(x) for x in value] if value else _OMIT
    if spec == "test":
        if isinstance(value, str):
            return ["CMD-SHELL", value]
        return [str(x) for x in value] if value else _OMIT
    if spec == "hosts":
        if isinstance(value, dict):
            items = []
            for host, ip in value.items():
                for one in ip if isinstance(ip, list) else [ip]:
                    items.append(f"{host}={one}")
        else:
            items = [str(h) for h in value]
        return sorted(items) if items else _OMIT
    if spec == "duration":
        ns = duration_ns(value)
        return go_duration(ns)
    if spec == "bytes":
        n = size_bytes(value)
        return str(n) if n else _OMIT
    if spec == "filemode":
        mode = int(value, 8) if isinstance(value, str) else int(value)
        return "0" + format(mode, "o")
    if spec == "pull_policy":
        if value == _RAW_IF_NOT_PRESENT:
            return "if_not_present"
        return "missing" if value == "if_not_present" else (str(value) if value else _OMIT)
    if spec == "bool":
        return True if value else _OMIT
    if spec == "int":
        return int(value) if value else _OMIT
    if spec == "float":
        return _float(value) if float(value) else _OMIT
    if spec == "str":
        return str(value) if value != "" else _OMIT
    return value


class _Omit:
    pass


_OMIT: Any = _Omit()


def _unnormalized(internal: dict[str, Any]) -> dict[str, Any]:
    """The service as compose-go loads it without its Normalize pass (``config --no-normalize``): no implicit
    default network, no default dockerfile, pull_policy as written, no dependencies implied by links,
    shared namespaces or volumes_from."""
    svc = {k: v for k, v in internal.items() if k != "env_file"}
    if svc.pop("__implicit_networks__", False):
        svc.pop("networks", None)
    build = svc.get("build")
    if isinstance(build, dict) and build.get("__implicit_dockerfile__"):
        svc["build"] = {k: v for k, v in build.items() if k != "dockerfile"}
    if svc.get("pull_policy") == "if_not_present":
        svc["pull_policy"] = _RAW_IF_NOT_PRESENT
    if svc.get("secrets"):  # the secret's default target is the loader's defaults pass, not Normalize
        svc["secrets"] = [({**x, "target": f"/run/secrets/{x.get('source')}"} if not x.get("target") else x)
                          for x in svc["secrets"]]
    return svc


_RAW_IF_NOT_PRESENT = "\x00if_not_present"  # printed as written: Normalize is what turns it into "missing"


def v2_service(internal: dict[str, Any]) -> dict[str, Any]:
    """What compose-go's loader adds to a service that the internal model keeps implicit."""
    svc = {k: v for k, v in internal.items() if k != "env_file"}  # env files are folded into environment
    deps = {k: dict(v or {}) for k, v in (svc.get("depends_on") or {}).items()}
    implied: list[tuple[str, bool]] = [(str(link).split(":")[0], True) for link in svc.get("links") or []]
    for key in ("network_mode", "ipc", "pid", "uts", "cgroup"):
        ref = str(svc.get(key) or "")
        if ref.startswith("service:"):
            implied.append((ref[len("service:"):], True))
    for vf in svc.get("volumes_from") or []:
        if not str(vf).startswith("container:"):
            implied.append((str(vf).split(":")[0], False))
    for dep, restart in implied:  # links, shared namespaces and volumes_from are dependencies too
        deps.setdefault(dep, {"condition": "service_started", "restart": restart, "required": True})
    if deps:
        svc["depends_on"] = deps
    if svc.get("secrets"):  # a secret lands in /run/secrets/<source> unless told otherwise
        svc["secrets"] = [({**x, "target": f"/run/secrets/{x.get('source')}"} if not x.get("target") else x)
                          for x in svc["secrets"]]
    build = svc.get("build")
    if isinstance(build, dict) and isinstance(build.get("args"), dict):  # an arg with no value is dropped
        svc["build"] = {**build, "args": {k: v for k, v in build["args"].items() if v is not None}}
    return svc


def canonical(project: Project, json_form: bool = False, normalize: bool = True) -> dict[str, Any]:
    """The project as Compose v2 models it: name, services, networks, volumes, secrets, configs."""
    doc: dict[str, Any] = {"name": project.name}
    services = {}
    for name in sorted(project.services):
        svc = v2_service(project.services[name]) if normalize else _unnormalized(project.services[name])
        shaped = _shape(svc, _SERVICE, json_form)
        services[name] = {} if shaped is _OMIT else shaped
        if json_form:  # command and entrypoint are never left out of Go's JSON (null when unset)
            services[name].setdefault("command", None)
            services[name].setdefault("entrypoint", None)
    doc["services"] = services
    for section, spec in (("networks", _NETWORK), ("volumes", _VOLUME_TOP), ("secrets", _SECRET),
                          ("configs", _CONFIG)):
        items = getattr(project, section)
        if not items:
            continue
        out = {}
        for key in sorted(items):
            obj = dict(items[key] or {})
            if not normalize and obj.pop("__implicit__", False):
                continue  # the implicit default network is Normalize's
            if not normalize and obj.get("__implicit_name__"):
                obj.pop("name", None)
            if section == "secrets" or (section == "configs" and obj.get("environment")):
                obj.pop("content", None)  # a secret's content (or an environment config's) is never printed
            shaped = _shape(obj, spec, json_form)
            out[key] = {} if shaped is _OMIT else shaped
        doc[section] = out
    for key in sorted(project.extensions, key=_NATURAL):  # top-level x-*: inline after the sections
        doc[key] = project.extensions[key]
    return doc


# -- YAML as yaml.v3 writes it ------------------------------------------------------------------------
def _natural_less(a: str, b: str) -> bool:
    """yaml.v3's map key order: letters compare as runes, digit runs as numbers, non-letters first."""
    ar, br = list(a), list(b)
    digits = False
    for i in range(min(len(ar), len(br))):
        if ar[i] == br[i]:
            digits = ar[i].isdigit()
            continue
        al, bl = ar[i].isalpha(), br[i].isalpha()
        if al and bl:
            return ar[i] < br[i]
        if al or bl:
            return al if digits else bl
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and ar[j].isdigit():
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and ar[ai].isdigit():
            an = an * 10 + int(ar[ai])
            ai += 1
        bi = i
        while bi < len(br) and br[bi].isdigit():
            bn = bn * 10 + int(br[bi])
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ar[i] < br[i]
    return len(ar) < len(br)


def _natural_cmp(a: str, b: str) -> int:
    if a == b:
        return 0
    return -1 if _natural_less(a, b) else 1


_NATURAL = functools.cmp_to_key(_natural_cmp)


class _StructDict(dict):  # type: ignore[type-arg]
    """A mapping whose key order is a struct's field order (not sorted on output)."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # sequences indented under their key, as yaml.v3 does


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    plain_tag = dumper.resolve(yaml.ScalarNode, data, (True, False))
    if plain_tag != "tag:yaml.org,2002:str" or data.lower() in _BOOL_WORDS or data == "":
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _represent_none(dumper: yaml.SafeDumper, data: None) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:null", "null")


def _represent_struct(dumper: yaml.SafeDumper, data: _StructDict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", list(data.items()))


def _represent_map(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", sorted(data.items(), key=lambda kv: _NATURAL(kv[0])))


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(type(None), _represent_none)
_Dumper.add_representer(_StructDict, _represent_struct)
_Dumper.add_representer(dict, _represent_map)
YamlDumper = _Dumper  # for other renderings of plain maps (compose/model.py)


def _structs(value: Any, spec: Any) -> Any:
    """Struct-shaped dicts marked so the dumper keeps their field order; plain maps get sorted."""
    if isinstance(spec, tuple):
        kind = spec[0]
        if kind in ("keep", "nullable"):
            return _structs(value, spec[1])
        if kind == "struct" and isinstance(value, dict):
            fields = dict(spec[1])
            rank = {k: i for i, (k, _sub) in enumerate(spec[1])}
            keys = sorted(value, key=lambda k: (rank.get(k, len(rank)), _NATURAL(k)))
            return _StructDict((k, _structs(value[k], fields.get(k, _ANY))) for k in keys)
        if kind == "map" and isinstance(value, dict):
            return {k: _structs(v, spec[1]) for k, v in value.items()}
        if kind == "list" and isinstance(value, list):
            return [_structs(v, spec[1]) for v in value]
        if kind == "ulimit" and isinstance(value, dict):
            return _StructDict(value)
    return value


def _typed(doc: dict[str, Any]) -> _StructDict:
    out = _StructDict()
    out["name"] = doc["name"]
    out["services"] = {k: _structs(v, _SERVICE) for k, v in doc["services"].items()}
    for section, spec in (("networks", _NETWORK), ("volumes", _VOLUME_TOP), ("secrets", _SECRET),
                          ("configs", _CONFIG)):
        if section in doc:
            out[section] = {k: _structs(v, spec) for k, v in doc[section].items()}
    for key in doc:
        if key.startswith("x-"):
            out[key] = doc[key]
    return out


def to_yaml(project: Project, normalize: bool = True) -> str:
    text = yaml.dump(_typed(canonical(project, normalize=normalize)), Dumper=_Dumper, default_flow_style=False,
                     allow_unicode=True, width=float("inf"), sort_keys=False)
    return text.replace("$", "$$")


def to_json(project: Project, normalize: bool = True) -> str:
    typed = _typed(canonical(project, json_form=True, normalize=normalize))
    top = {k: typed[k] for k in sorted(typed)}  # the top level is a Go map: sorted keys
    text = json.dumps(_go_json_order(top), indent=2, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("$", "$$")


def _go_json_order(value: Any) -> Any:
    """Plain maps sorted bytewise (Go's json sorts map keys); struct-ordered dicts keep their order."""
    if isinstance(value, _StructDict):
        return {k: _go_json_order(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {k: _go_json_order(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_go_json_order(v) for v in value]
    return value
