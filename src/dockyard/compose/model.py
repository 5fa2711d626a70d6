"""The untyped model ``config --no-interpolate`` prints: Compose v2's ``LoadModel`` form.

Without interpolation Compose v2 (2.29.7, compose-go v2.2.0) cannot make its typed project (``${PORT}`` is
no port number), so it prints the merged YAML tree itself after the loader's tree passes: short syntax made
long where it parses (a ports list with an entry that does not parse is left as written), defaults filled in
(build context and dockerfile, a port's protocol and mode, a secret's target, depends_on's condition and
required), relative paths made absolute, the implicit ``default`` network, resources named, and each
service's bare environment entries (and build args) looked up in the project's environment. Everything else
stays as written: ``${VAR}`` and ``$$``, durations, sizes, a string command, list-or-mapping forms, and all
services whatever their profiles. Being a plain map it prints with every key sorted (YAML in yaml.v3's order,
JSON bytewise), and nothing is escaped (``$`` stays ``$``).

One difference on purpose: v2 copies an environment-sourced secret's value into the model (``x-#value``);
a secret's value is never printed here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from dockyard.compose.errors import ComposeError, ProjectError
from dockyard.compose.normalize import parse_port, parse_volume, resolve_path

_SHARED_NAMESPACES = ("network_mode", "ipc", "pid", "uts", "cgroup")


def _remote(ctx: str) -> bool:
    return "://" in ctx or ctx.startswith("git@")


def _lookup_list(items: list[Any], env: dict[str, str], keep_empty: bool) -> list[Any]:
    out = []
    for item in items:
        text = str(item)
        if "=" in text:
            out.append(item)
        elif text in env:
            out.append(f"{text}={env[text]}")
        elif keep_empty:
            out.append(item)
    return out


def _lookup(value: Any, env: dict[str, str], keep_empty: bool) -> Any:
    """compose-go's Normalize ``resolve``: bare entries take their value from the environment."""
    if isinstance(value, list):
        return _lookup_list(value, env, keep_empty)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if v is not None:
                out[k] = v
            elif k in env:
                out[k] = env[k]
            elif keep_empty:
                out[k] = None
        return out
    return value


def _ports(entries: list[Any]) -> list[Any]:
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, dict):
            out.append({**entry, "protocol": entry.get("protocol", "tcp"), "mode": entry.get("mode", "ingress")})
            continue
        try:
            parsed = parse_port(entry)
        except (ProjectError, ValueError):
            return entries  # one entry that does not parse (yet): the whole list as written
        out += [{"mode": p["mode"], **({"host_ip": p["host_ip"]} if p.get("host_ip") else {}),
                 "target": p["target"], **({"published": p["published"]} if p.get("published") else {}),
                 "protocol": p["protocol"]} for p in parsed]
    return out


def _service(name: str, raw: dict[str, Any], base: str, env: dict[str, str]) -> dict[str, Any]:
    svc = copy.deepcopy(raw)
    build = svc.get("build")
    if build is not None:
        b = {"context": build} if isinstance(build, str) else dict(build)
        b.setdefault("context", ".")
        if not _remote(str(b["context"])):
            b["context"] = resolve_path(base, str(b["context"]))
        if b.get("dockerfile") is None and b.get("dockerfile_inline") is None:
            b["dockerfile"] = "Dockerfile"
        if "args" in b:
            b["args"] = _lookup(b["args"], env, keep_empty=False)
        if isinstance(b.get("additional_contexts"), list):
            b["additional_contexts"] = dict(str(x).partition("=")[::2] for x in b["additional_contexts"])
        if isinstance(b.get("secrets"), list):
            b["secrets"] = [{"source": x} if isinstance(x, str) else x for x in b["secrets"]]
        svc["build"] = b
    if "environment" in svc:
        svc["environment"] = _lookup(svc["environment"], env, keep_empty=True)
    if svc.get("pull_policy") == "if_not_present":
        svc["pull_policy"] = "missing"
    ef = svc.get("env_file")
    if ef is not None:
        items = [ef] if isinstance(ef, (str, dict)) else ef
        svc["env_file"] = [{"path": resolve_path(base, str(i["path"] if isinstance(i, dict) else i)),
                            "required": (i.get("required", True) if isinstance(i, dict) else True)} for i in items]
    deps = svc.get("depends_on")
    if isinstance(deps, list):
        deps = {str(d): {"condition": "service_started", "required": True} for d in deps}
    elif isinstance(deps, dict):
        deps = {k: {"condition": "service_started", "required": True, **(v or {})} for k, v in deps.items()}
    else:
        deps = {}
    for link in svc.get("links") or []:
        parts = str(link).split(":")
        deps.setdefault(parts[0], {"condition": "service_started", "restart": True, "required": True})
    for key in _SHARED_NAMESPACES:
        ref = str(svc.get(key) or "")
        if ref.startswith("service:"):
            deps.setdefault(ref[len("service:"):], {"condition": "service_started", "restart": True,
                                                   "required": True})
    for vf in svc.get("volumes_from") or []:
        if not str(vf).startswith("container:"):
            deps.setdefault(str(vf).split(":")[0], {"condition": "service_started", "restart": False,
                                                   "required": True})
    if deps:
        svc["depends_on"] = deps
    nets = svc.get("networks")
    if isinstance(nets, list):
        svc["networks"] = {str(n): None for n in nets}
    if "network_mode" not in svc and not svc.get("networks"):
        svc["networks"] = {"default": None}
    if isinstance(svc.get("ports"), list):
        svc["ports"] = _ports(svc["ports"])
    if isinstance(svc.get("volumes"), list):
        svc["volumes"] = [parse_volume(v, base) for v in svc["volumes"]]
    for key in ("secrets", "configs"):
        if isinstance(svc.get(key), list):
            svc[key] = [{"source": x} if isinstance(x, str) else dict(x) for x in svc[key]]
    if isinstance(svc.get("secrets"), list):
        svc["secrets"] = [{**x, "target": x.get("target", f"/run/secrets/{x.get('source')}")}
                          for x in svc["secrets"]]
    if isinstance(svc.get("devices"), list):
        devs: list[Any] = []
        for d in svc["devices"]:
            if isinstance(d, dict):
                devs.append(d)
                continue
            bits = str(d).split(":")
            devs.append({"source": bits[0], "target": (bits[1] if len(bits) > 1 and bits[1] else bits[0]),
                         "permissions": bits[2] if len(bits) > 2 else "rwm"})
        svc["devices"] = devs
    svc.pop("extends", None)
    return svc


def _resource(kind: str, key: str, raw: Any, project: str, base: str, env: dict[str, str]) -> dict[str, Any]:
    obj = dict(raw or {})
    ext = obj.get("external")
    if isinstance(ext, dict):
        obj["external"] = True
        if ext.get("name") is not None and "name" not in obj:
            obj["name"] = ext["name"]
    if kind in ("secrets", "configs") and obj.get("file"):
        obj["file"] = resolve_path(base, str(obj["file"]))
    if kind == "configs" and obj.get("environment") and str(obj["environment"]) in env:
        obj["content"] = env[str(obj["environment"])]
    if obj.get("name") is None:
        obj["name"] = key if obj.get("external") is True else f"{project}_{key}"
    return obj


def to_model(name: str, services: dict[str, dict[str, Any]], merged: dict[str, Any], bases: dict[str, str],
             project_dir: str, env: dict[str, str]) -> dict[str, Any]:
    model: dict[str, Any] = {k: copy.deepcopy(v) for k, v in merged.items()
                             if k not in ("services", "include", "version", "name") and not k.startswith("__")}
    model["name"] = name
    model["services"] = {s: _service(s, svc, bases.get(s, project_dir), env) for s, svc in services.items()}
    nets = dict(model.get("networks") or {})
    if "default" not in nets and any("default" in (svc.get("networks") or {}) for svc in model["services"].values()):
        nets["default"] = None
    if nets:
        model["networks"] = nets
    for kind in ("networks", "volumes", "secrets", "configs"):
        if kind in model and isinstance(model[kind], dict):
            model[kind] = {k: _resource(kind, k, v, name, bases.get(f"{kind}:{k}", project_dir), env)
                           for k, v in model[kind].items()}
    return model


def render_model(model: dict[str, Any], fmt: str) -> str:
    """The model as yaml.v3's encoder (indent 2) or Go's json.MarshalIndent writes a map: keys sorted."""
    if fmt == "json":
        text = json.dumps(_sorted(model), indent=2, ensure_ascii=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if fmt == "yaml":
        from dockyard.compose.canonical import YamlDumper

        return str(yaml.dump(model, Dumper=YamlDumper, default_flow_style=False, allow_unicode=True,
                             width=float("inf"), sort_keys=False))
    raise ComposeError(f'unsupported format "{fmt}"')


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
