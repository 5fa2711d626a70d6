"""``compose config``: the resolved model, or one aspect of it (--services, --volumes, --profiles, --images,
--hash), as YAML or JSON, like Compose v2 prints it."""

from __future__ import annotations

import json
from typing import IO, Any

import yaml

from dockyard.compose.labels import config_hash, default_image_name
from dockyard.compose.project import Project


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def model(project: Project) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": project.name, "services": {}}
    for name in sorted(project.services):
        doc["services"][name] = _clean(project.services[name])
    for section in ("networks", "volumes", "secrets", "configs"):
        items = getattr(project, section)
        if items:
            doc[section] = {k: _clean(v) for k, v in sorted(items.items())}
    return doc


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def render(project: Project, out: IO[str], fmt: str = "yaml", services: bool = False, volumes: bool = False,
           profiles: bool = False, images: bool = False, hash_of: str | None = None, quiet: bool = False) -> None:
    if quiet:
        return
    if services:
        for name in project.ordered():
            out.write(name + "\n")
        return
    if volumes:
        for name in sorted(project.volumes):
            out.write(name + "\n")
        return
    if profiles:
        found = sorted({p for svc in [*project.services.values(), *project.disabled.values()]
                        for p in svc.get("profiles") or []})
        for p in found:
            out.write(p + "\n")
        return
    if images:
        for name in sorted(project.services):
            svc = project.services[name]
            out.write(str(svc.get("image") or default_image_name(project.name, name)) + "\n")
        return
    if hash_of is not None:
        names = sorted(project.services) if hash_of == "*" else [s.strip() for s in hash_of.split(",")]
        for name in names:
            out.write(f"{name} {config_hash(project.service(name))}\n")
        return
    doc = model(project)
    if fmt == "json":
        out.write(json.dumps(doc, indent=4) + "\n")
    else:
        out.write(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True))
