"""Short syntax made long: the one form of a service that config, the hash and the Engine requests read.

Relative paths (build contexts, bind sources, env files, secret and config files) are made absolute against
the directory of the file that declared them, as the specification asks.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from dockyard.compose.envfile import parse_env_file
from dockyard.compose.errors import ProjectError
from dockyard.compose.merge import hosts_to_mapping, list_to_mapping


def resolve_path(base: str, path: str) -> str:
    if path.startswith("~"):
        path = os.path.expanduser(path)
    return os.path.normpath(os.path.join(base, path))


def _is_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source in (".", "..")


def parse_port(spec: Any) -> list[dict[str, Any]]:
    """One ports entry (short or long syntax) as long-syntax mappings; ranges become one entry per port."""
    if isinstance(spec, dict):
        entry = {"target": int(spec["target"]), "protocol": str(spec.get("protocol") or "tcp"),
                 "mode": str(spec.get("mode") or "ingress")}
        if spec.get("published") not in (None, ""):
            entry["published"] = str(spec["published"])
        if spec.get("host_ip"):
            entry["host_ip"] = str(spec["host_ip"])
        for k in ("name", "app_protocol"):
            if spec.get(k):
                entry[k] = spec[k]
        return [entry]
    text = str(spec)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    host_ip = ""
    if text.startswith("["):
        end = text.index("]")
        host_ip, text = text[1:end], text[end + 2:]
    parts = text.rsplit(":", 2) if text.count(":") <= 2 else None
    if parts is None:
        raise ProjectError(f"invalid port specification: {spec!r}")
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    else:
        published, target = "", parts[0]
    if not _port_ok(target) or (published and not _port_ok(published)):
        raise ProjectError(f"invalid containerPort: {target}" if not _port_ok(target)
                           else f"invalid hostPort: {published}")
    out: list[dict[str, Any]] = []
    targets = _range(target)
    pubs = _range(published) if published else []
    if pubs and len(pubs) != len(targets) and len(targets) != 1:
        raise ProjectError(f"invalid ranges specified for container and host Ports: {target} and {published}")
    for i, t in enumerate(targets):
        item: dict[str, Any] = {"target": t, "protocol": proto, "mode": "ingress"}
        if pubs:
            item["published"] = str(pubs[i]) if len(targets) > 1 else published
        if host_ip:
            item["host_ip"] = host_ip
        out.append(item)
    return out


def _port_ok(text: str) -> bool:
    a, _, b = text.partition("-")
    return a.isdigit() and (not b or b.isdigit())


def _range(text: str) -> list[int]:
    a, _, b = text.partition("-")
    if b:
        return list(range(int(a), int(b) + 1))
    return [int(a)]


def parse_volume(spec: Any, base: str, resolve: bool = True) -> dict[str, Any]:
    """One service volumes entry as a long-syntax mapping (``resolve=False``: a bind source as written)."""
    if isinstance(spec, dict):
        long = dict(spec)
        if long.get("type") == "bind" and long.get("source") and resolve:
            long["source"] = resolve_path(base, str(long["source"]))
        return long
    text = str(spec)
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0], "volume": {}}
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) > 2 else ""
    opts = set(mode.split(",")) if mode else set()
    v: dict[str, Any]
    if _is_path(source):
        v = {"type": "bind", "source": resolve_path(base, source) if resolve else source, "target": target,
             "bind": {"create_host_path": True}}
        for p in ("shared", "slave", "private", "rshared", "rslave", "rprivate"):
            if p in opts:
                v["bind"]["propagation"] = p
        if "z" in opts or "Z" in opts:
            v["bind"]["selinux"] = "z" if "z" in opts else "Z"
    else:  # the short syntax always carries the (maybe empty) volume options, as compose-go's parser
        v = {"type": "volume", "source": source, "target": target, "volume": {"nocopy": True} if "nocopy" in opts
             else {}}
    if "ro" in opts:
        v["read_only"] = True
    return v


def _command(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(x) for x in value]


def _env_mapping(value: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k, v in list_to_mapping(value).items():
        out[str(k)] = None if v is None else _scalar(v)
    return out


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def normalize_service(name: str, raw: dict[str, Any], base: str, environ: Mapping[str, str],
                      resolve: bool = True) -> dict[str, Any]:
    """The long form of service ``name`` (``base``: the directory its relative paths start from; ``resolve``
    False: build contexts, bind sources and watched paths left as written, as ``config --no-path-resolution``)."""
    svc = dict(raw)
    build = svc.get("build")
    if build is not None:
        b = {"context": build} if isinstance(build, str) else dict(build)
        ctx = str(b.get("context") or ".")
        if "://" not in ctx and not ctx.startswith("git@"):
            b["context"] = resolve_path(base, ctx) if resolve else ctx
        if "dockerfile" not in b:
            b["dockerfile"] = "Dockerfile"
            b["__implicit_dockerfile__"] = True  # compose-go's normalization (config --no-normalize leaves it out)
        if "args" in b:
            b["args"] = {k: (None if v is None else _scalar(v)) for k, v in list_to_mapping(b["args"]).items()}
        if "labels" in b:
            b["labels"] = {k: _scalar(v) for k, v in list_to_mapping(b["labels"]).items()}
        if "extra_hosts" in b:
            b["extra_hosts"] = hosts_to_mapping(b["extra_hosts"])
        svc["build"] = b
    for key in ("command", "entrypoint"):
        if key in svc:
            svc[key] = _command(svc[key])
    env: dict[str, str | None] = {}
    env_files = svc.pop("env_file", None)
    if env_files is not None:
        items = [env_files] if isinstance(env_files, (str, dict)) else env_files
        listed: list[dict[str, Any]] = []
        for item in items:
            spec = {"path": item} if isinstance(item, str) else dict(item)
            path = resolve_path(base, str(spec["path"]))
            listed.append({"path": path, "required": spec.get("required", True) is not False})
            if not os.path.exists(path) and spec.get("required", True) is False:
                continue
            for k, v in parse_env_file(path, environ).items():
                env[k] = v
    own: dict[str, str | None] = {}
    if "environment" in svc:
        for k, val in _env_mapping(svc["environment"]).items():
            env[k] = own[k] = val if val is not None else environ.get(k)
    if env_files is not None:
        # the service before its env files are read (what `config --hash` hashes, as Compose v2 does)
        svc["__env_files__"] = listed
        svc["__own_environment__"] = own
    if env or "environment" in svc or env_files is not None:
        svc["environment"] = env
    for key in ("labels", "sysctls", "annotations"):
        if key in svc:
            svc[key] = {str(k): _scalar(v) for k, v in list_to_mapping(svc[key]).items()}
    if "extra_hosts" in svc:
        svc["extra_hosts"] = {k: str(v) for k, v in hosts_to_mapping(svc["extra_hosts"]).items()}
    if "ports" in svc:
        ports: list[dict[str, Any]] = []
        for p in svc["ports"] or []:
            ports += parse_port(p)
        svc["ports"] = ports
    if "expose" in svc:
        svc["expose"] = [str(e) for e in svc["expose"]]
    if "volumes" in svc:
        svc["volumes"] = [parse_volume(v, base, resolve) for v in svc["volumes"] or []]
    if "tmpfs" in svc and isinstance(svc["tmpfs"], str):
        svc["tmpfs"] = [svc["tmpfs"]]
    for key in ("dns", "dns_search"):
        if key in svc and isinstance(svc[key], str):
            svc[key] = [svc[key]]
    deps = svc.get("depends_on")
    if deps is not None:
        if isinstance(deps, list):
            svc["depends_on"] = {str(d): {"condition": "service_started", "required": True} for d in deps}
        else:
            svc["depends_on"] = {str(d): {"condition": (s or {}).get("condition", "service_started"),
                                          "required": (s or {}).get("required", True),
                                          **({"restart": s["restart"]} if (s or {}).get("restart") else {})}
                                 for d, s in deps.items()}
    nets = svc.get("networks")
    if isinstance(nets, list):
        svc["networks"] = {str(n): None for n in nets}
    if not svc.get("networks") and not svc.get("network_mode"):
        svc["networks"] = {"default": None}
        svc["__implicit_networks__"] = True
    for key in ("secrets", "configs"):
        if key in svc:
            svc[key] = [{"source": s} if isinstance(s, str) else dict(s) for s in svc[key] or []]
    if "ulimits" in svc:
        svc["ulimits"] = {k: ({"single": int(v), "soft": int(v), "hard": int(v)} if not isinstance(v, dict) else v)
                          for k, v in svc["ulimits"].items()}
    if "profiles" in svc:
        svc["profiles"] = [str(p) for p in svc["profiles"]]
    dev = svc.get("develop")
    if isinstance(dev, dict) and isinstance(dev.get("watch"), list) and resolve:  # absolute, as v2 has them
        svc["develop"] = {**dev, "watch": [({**w, "path": resolve_path(base, str(w["path"]))}
                                            if isinstance(w, dict) and w.get("path") else w) for w in dev["watch"]]}
    svc.pop("extends", None)
    return svc


def normalize_resource(kind: str, key: str, raw: Any, project: str, base: str,
                       resolve: bool = True) -> dict[str, Any]:
    """A top-level network/volume/secret/config with its engine name (``project_key`` unless named or external)."""
    obj = dict(raw or {})
    ext = obj.get("external")
    if isinstance(ext, dict):  # the legacy `external: {name: x}`
        obj["external"] = True
        obj.setdefault("name", ext.get("name") or key)
    if "labels" in obj:
        obj["labels"] = {str(k): _scalar(v) for k, v in list_to_mapping(obj["labels"]).items()}
    if kind in ("secrets", "configs"):
        if obj.get("file") and resolve:
            obj["file"] = resolve_path(base, str(obj["file"]))
    if "name" not in obj:
        obj["name"] = key if obj.get("external") else f"{project}_{key}"
        obj["__implicit_name__"] = True
    return obj
