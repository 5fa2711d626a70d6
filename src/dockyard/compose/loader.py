"""From the command line and the environment to a Project: files, env, include, extends, profiles.

The steps follow Compose v2: find the files (``-f``, ``COMPOSE_FILE``, else compose.yaml & co. in the working
directory or a parent, with its override file), read ``.env``/``--env-file``, then per file parse,
interpolate, validate and follow ``include:``; merge the files in order; resolve ``extends``; pick the
services of the active profiles; check the dependency graph; normalize.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from dockyard.compose.envfile import default_env_file, read_env_files
from dockyard.compose.errors import FILE_NOT_FOUND, ComposeError, ProjectError
from dockyard.compose.interpolate import interpolate
from dockyard.compose.merge import merge_documents, merge_services
from dockyard.compose.normalize import normalize_resource, normalize_service, resolve_path
from dockyard.compose.project import Project, check_graph
from dockyard.compose.schema import validate

CANDIDATES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDES = {"compose.yaml": ("compose.override.yaml", "compose.override.yml"),
             "compose.yml": ("compose.override.yml", "compose.override.yaml"),
             "docker-compose.yaml": ("docker-compose.override.yaml", "docker-compose.override.yml"),
             "docker-compose.yml": ("docker-compose.override.yml", "docker-compose.override.yaml")}


def _yaml_loader() -> type:
    """libyaml's parser where PyYAML was built with it (several times faster on a large file), reading
    plain scalars as compose-go's yaml.v3 does: only true/false are booleans (``restart: no`` and ``FOO: yes``
    are strings), ``22:22`` is no base-60 number (a port mapping stays a string) and a date stays a string."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc,valid-type]
        pass

    dropped = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
               "tag:yaml.org,2002:timestamp"}
    Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag not in dropped]
                                      for k, v in base.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(
        r"^[-+]?(?:0|[1-9][0-9_]*|0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$"), list("-+0123456789"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
    return Loader


_YAML_LOADER = _yaml_loader()
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class LoadOptions:
    """What the global flags say (each None/empty when not given)."""

    def __init__(self, files: list[str] | None = None, project_name: str | None = None,
                 project_directory: str | None = None, env_files: list[str] | None = None,
                 profiles: list[str] | None = None, cwd: str | None = None,
                 environ: Mapping[str, str] | None = None, warn: Callable[[str], None] | None = None,
                 stdin_text: str | None = None, interpolate: bool = True, consistency: bool = True,
                 resolve_paths: bool = True) -> None:
        self.files = list(files or [])
        self.project_name = project_name
        self.project_directory = project_directory
        self.env_files = list(env_files or [])
        self.profiles = list(profiles or [])
        self.cwd = cwd
        self.environ = environ
        self.warn = warn
        self.stdin_text = stdin_text
        self.interpolate = interpolate  # False: ${VAR} left as written (config --no-interpolate)
        self.consistency = consistency  # False: references to undefined objects let through (--no-consistency)
        self.resolve_paths = resolve_paths  # False: relative paths kept as written (--no-path-resolution)


def normalize_project_name(name: str) -> str:
    """Compose v2's name from a directory: lower-cased, only [a-z0-9_-], starting with a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return name.lstrip("_-")


def check_project_name(name: str) -> str:
    if not _PROJECT_NAME.match(name):
        raise ComposeError(f'invalid project name "{name}": must consist only of lowercase alphanumeric '
                           "characters, hyphens, and underscores as well as start with a letter or number")
    return name


def find_files(cwd: str) -> list[str]:
    """compose.yaml & co. in ``cwd`` or its nearest parent that has one, with the matching override file."""
    d = os.path.abspath(cwd)
    while True:
        for name in CANDIDATES:
            p = os.path.join(d, name)
            if os.path.isfile(p):
                found = [p]
                for o in OVERRIDES[name]:
                    op = os.path.join(d, o)
                    if os.path.isfile(op):
                        found.append(op)
                        break
                return found
        parent = os.path.dirname(d)
        if parent == d:
            raise ComposeError("no configuration file provided: not found", FILE_NOT_FOUND)
        d = parent


def _read_yaml(path: str, stdin_text: str | None) -> dict[str, Any]:
    try:
        if path == "-":
            text = stdin_text if stdin_text is not None else sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise ComposeError(f"open {path}: no such file or directory", FILE_NOT_FOUND) from None
    except IsADirectoryError:
        raise ComposeError(f"read {path}: is a directory", FILE_NOT_FOUND) from None
    try:
        doc = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ProjectError(f"yaml: {where}{problem} in {path}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ProjectError(f"validating {path}: (root) must be a mapping")
    return _stringify_keys(doc)


def _stringify_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, bool) else str(k).lower(): _stringify_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value]
    return value


class _Unit:
    """One parsed document and the directory its relative paths start from."""

    def __init__(self, doc: dict[str, Any], base: str, source: str) -> None:
        self.doc = doc
        self.base = base
        self.source = source


class _Gathered:
    """What loading found before profiles and normalization: the merged document and its services."""

    def __init__(self, project_dir: str, env: dict[str, str], files: list[str], merged: dict[str, Any],
                 bases: dict[str, str], name: str, services: dict[str, dict[str, Any]]) -> None:
        self.project_dir = project_dir
        self.env = env
        self.files = files
        self.merged = merged
        self.bases = bases
        self.name = name
        self.services = services


class Loader:
    def __init__(self, opts: LoadOptions) -> None:
        self.opts = opts
        self.cwd = os.path.abspath(opts.cwd or os.getcwd())
        self.shell = dict(os.environ if opts.environ is None else opts.environ)
        self.warned: set[str] = set()

    def _warn_unset(self, name: str) -> None:
        if name not in self.warned and self.opts.warn:
            self.warned.add(name)
            self.opts.warn(f'The "{name}" variable is not set. Defaulting to a blank string.')

    def load(self, extra_profiles: list[str] | None = None, services_named: list[str] | None = None) -> Project:
        g = self._gather()
        return self._project(g, extra_profiles, services_named)

    def load_model(self) -> dict[str, Any]:
        """The merged model before the typed project is made (``config --no-interpolate``): compose/model.py."""
        from dockyard.compose.model import to_model

        g = self._gather()
        return to_model(g.name, g.services, g.merged, g.bases, g.project_dir, g.env)

    def _gather(self) -> _Gathered:
        """Files found, env read, each file parsed (interpolated unless told not to), validated, included,
        merged in order; the project named; every service's extends resolved."""
        opts = self.opts
        project_dir = os.path.abspath(os.path.join(self.cwd, opts.project_directory)) \
            if opts.project_directory else None
        env_dir = project_dir or self.cwd
        env_paths = [resolve_path(self.cwd, p) for p in opts.env_files]
        if not env_paths:
            default = default_env_file(env_dir)
            env_paths = [default] if default else []
        dotenv = read_env_files(env_paths, self.shell)
        env = {**dotenv, **self.shell}
        files = list(opts.files)
        if not files and env.get("COMPOSE_FILE"):
            sep = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
            files = [f for f in env["COMPOSE_FILE"].split(sep) if f]
        if files:
            files = [f if f == "-" else resolve_path(env_dir if not opts.files else self.cwd, f) for f in files]
        else:
            files = find_files(env_dir)
        if project_dir is None:
            project_dir = self.cwd if files[0] == "-" else os.path.dirname(files[0])
            if not opts.env_files and not env_paths:
                default = default_env_file(project_dir)
                if default:
                    dotenv = read_env_files([default], self.shell)
                    env = {**dotenv, **self.shell}
        merged: dict[str, Any] = {}
        bases: dict[str, str] = {}
        for f in files:
            unit = self._unit(f, project_dir, env)
            bases = {**unit.doc.pop("__bases__", {}), **bases}  # a service's first definition sets its base
            merged = merge_documents(merged, unit.doc)
        name = opts.project_name or env.get("COMPOSE_PROJECT_NAME") or None
        if name:
            check_project_name(name)
        elif merged.get("name"):
            raw_name = str(merged["name"])
            if not opts.interpolate:  # the name is interpolated on its own even so
                raw_name = str(interpolate(raw_name, env, files[0], self._warn_unset, "name"))
            name = check_project_name(raw_name)
        else:
            name = normalize_project_name(os.path.basename(project_dir))
            if not name:
                raise ComposeError(f'project name must not be empty (directory "{project_dir}")')
        env.setdefault("COMPOSE_PROJECT_NAME", name)
        raw_services: dict[str, Any] = merged.get("services") or {}
        services: dict[str, dict[str, Any]] = {}
        for sname, svc in raw_services.items():
            services[sname] = self._extends(sname, svc or {}, raw_services, bases.get(sname, project_dir),
                                            env, [])
        return _Gathered(project_dir, env, files, merged, bases, name, services)

    def _project(self, g: _Gathered, extra_profiles: list[str] | None,
                 services_named: list[str] | None) -> Project:
        opts = self.opts
        project_dir, env, files, merged, bases, name, services = (g.project_dir, g.env, g.files, g.merged,
                                                                  g.bases, g.name, g.services)
        profiles = list(opts.profiles) + list(extra_profiles or [])
        if not opts.profiles and env.get("COMPOSE_PROFILES"):
            profiles += [p.strip() for p in env["COMPOSE_PROFILES"].split(",") if p.strip()]
        active: dict[str, dict[str, Any]] = {}
        disabled: dict[str, dict[str, Any]] = {}
        named = set(services_named or [])
        for sname, svc in services.items():
            sp = [str(p) for p in svc.get("profiles") or []]
            on = not sp or "*" in profiles or any(p in profiles for p in sp) or sname in named
            (active if on else disabled)[sname] = svc
        # a service named on the command line pulls in its dependencies' profiles too
        changed = bool(named)
        while changed:
            changed = False
            for sname in list(active):
                for d in (active[sname].get("depends_on") or {}):
                    if d in disabled and sname in named:
                        active[d] = disabled.pop(d)
                        named.add(d)
                        changed = True
        rp = opts.resolve_paths
        normalized = {s: normalize_service(s, svc, bases.get(s, project_dir), env, rp) for s, svc in active.items()}
        off = {s: normalize_service(s, svc, bases.get(s, project_dir), env, rp) for s, svc in disabled.items()}
        check_graph(normalized, off, check_undefined=opts.consistency)
        for sname, svc in normalized.items():
            if not svc.get("image") and not svc.get("build"):
                raise ProjectError(f'service "{sname}" has neither an image nor a build context specified: '
                                   "invalid compose project")
        project = Project(name=name, working_dir=project_dir, config_files=files, services=normalized,
                          environment=env, disabled=off, profiles=profiles)
        project.extensions = {k: v for k, v in merged.items() if k.startswith("x-")}
        used_nets = {n for svc in normalized.values() for n in (svc.get("networks") or {})}
        nets = dict(merged.get("networks") or {})
        if "default" in used_nets and "default" not in nets:
            nets["default"] = {"__implicit__": True}
        for key, raw in nets.items():
            project.networks[key] = normalize_resource("networks", key, raw, name, project_dir)
        if opts.consistency:  # every reference names a defined object
            for sname, svc in normalized.items():
                for n in svc.get("networks") or {}:
                    if n not in project.networks:
                        raise ProjectError(f"service {sname!r} refers to undefined network {n}: invalid compose project")
                for v in svc.get("volumes") or []:
                    if v.get("type") == "volume" and v.get("source") and v["source"] not in (merged.get("volumes") or {}):
                        raise ProjectError(f"service {sname!r} refers to undefined volume {v['source']}: "
                                           "invalid compose project")
                for kind in ("secrets", "configs"):
                    for ref in svc.get(kind) or []:
                        if ref["source"] not in (merged.get(kind) or {}):
                            raise ProjectError(f"service {sname!r} refers to undefined {kind[:-1]} {ref['source']}: "
                                               "invalid compose project")
        for key, raw in (merged.get("volumes") or {}).items():
            project.volumes[key] = normalize_resource("volumes", key, raw, name, project_dir)
        for kind in ("secrets", "configs"):
            for key, raw in (merged.get(kind) or {}).items():
                getattr(project, kind)[key] = normalize_resource(kind, key, raw, name,
                                                                 bases.get(f"{kind}:{key}", project_dir), rp)
        return project

    # -- one file ---------------------------------------------------------------------------------------
    def _unit(self, path: str, base: str, env: dict[str, str], chain: tuple[str, ...] = ()) -> _Unit:
        source = "-" if path == "-" else path
        doc = _read_yaml(path, self.opts.stdin_text)
        if self.opts.interpolate:
            doc = interpolate(doc, env, source, self._warn_unset)
        validate(doc, source)
        doc.pop("version", None)
        bases = {s: base for s in (doc.get("services") or {})}
        for kind in ("secrets", "configs"):
            for key in doc.get(kind) or {}:
                bases[f"{kind}:{key}"] = base
        doc["__bases__"] = bases
        for item in doc.pop("include", None) or []:
            included = self._include(item, base, env, path, chain + (path,))
            for section in ("services", "networks", "volumes", "secrets", "configs"):
                for key in (included.get(section) or {}):
                    if key in (doc.get(section) or {}):
                        raise ProjectError(f"imported compose file {item if isinstance(item, str) else item['path']}"
                                           f" defines conflicting {section[:-1]} {key}")
            bases = {**included.pop("__bases__", {}), **doc["__bases__"]}
            doc = merge_documents(included, doc)
            doc["__bases__"] = bases
        return _Unit(doc, base, source)

    def _include(self, item: Any, base: str, env: dict[str, str], parent: str,
                 chain: tuple[str, ...]) -> dict[str, Any]:
        spec = {"path": item} if isinstance(item, str) else dict(item)
        paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
        paths = [resolve_path(base, str(p)) for p in paths]
        inc_dir = resolve_path(base, str(spec["project_directory"])) if spec.get("project_directory") \
            else os.path.dirname(paths[0])
        inc_env = dict(env)
        env_files = spec.get("env_file")
        if env_files:
            env_list = [env_files] if isinstance(env_files, str) else env_files
            inc_env = {**read_env_files([resolve_path(base, str(e)) for e in env_list], self.shell), **self.shell}
        else:
            default = default_env_file(inc_dir)
            if default:
                inc_env = {**read_env_files([default], self.shell), **env}
        merged: dict[str, Any] = {}
        bases: dict[str, str] = {}
        for p in paths:
            if p in chain:
                raise ProjectError(f"include cycle detected: {' -> '.join(chain + (p,))}")
            unit = self._unit(p, inc_dir, inc_env, chain)
            bases = {**unit.doc.pop("__bases__", {}), **bases}
            merged = merge_documents(merged, unit.doc)
        merged["__bases__"] = bases
        return merged

    # -- extends ----------------------------------------------------------------------------------------
    def _extends(self, name: str, svc: dict[str, Any], services: dict[str, Any], base: str,
                 env: dict[str, str], chain: list[str]) -> dict[str, Any]:
        ext = svc.get("extends")
        if not ext:
            return svc
        spec = {"service": ext} if isinstance(ext, str) else dict(ext)
        target = str(spec["service"])
        key = f"{spec.get('file', '')}:{target}"
        if key in chain:
            raise ProjectError(f"circular reference with extends in service {name}")
        if spec.get("file"):
            path = resolve_path(base, str(spec["file"]))
            unit = self._unit(path, os.path.dirname(path), env)
            others = unit.doc.get("services") or {}
            if target not in others:
                raise ProjectError(f"cannot extend service {name!r} in {path}: service {target!r} not found")
            parent = self._extends(target, others[target] or {}, others, os.path.dirname(path), env, chain + [key])
            parent = _rebase_paths(parent, os.path.dirname(path), base)
        else:
            if target not in services:
                raise ProjectError(f"cannot extend service {name!r}: service {target!r} not found")
            parent = self._extends(target, services[target] or {}, services, base, env, chain + [key])
        parent = {k: v for k, v in parent.items() if k not in ("depends_on",)} if spec.get("file") else dict(parent)
        child = {k: v for k, v in svc.items() if k != "extends"}
        return merge_services(parent, child)


def _rebase_paths(svc: dict[str, Any], from_dir: str, to_dir: str) -> dict[str, Any]:
    """A service taken from another file keeps its relative paths pointing where that file meant them."""
    out = dict(svc)
    b = out.get("build")
    if isinstance(b, str):
        out["build"] = resolve_path(from_dir, b)
    elif isinstance(b, dict) and b.get("context"):
        out["build"] = {**b, "context": resolve_path(from_dir, str(b["context"]))}
    vols: list[Any] = []
    for v in out.get("volumes") or []:
        if isinstance(v, str) and v.split(":")[0].startswith((".", "~")) and ":" in v:
            src, _, rest = v.partition(":")
            vols.append(resolve_path(from_dir, src) + ":" + rest)
        elif isinstance(v, dict) and v.get("type") == "bind" and str(v.get("source", "")).startswith("."):
            vols.append({**v, "source": resolve_path(from_dir, str(v["source"]))})
        else:
            vols.append(v)
    if "volumes" in out:
        out["volumes"] = vols
    ef = out.get("env_file")
    if ef:
        items = [ef] if isinstance(ef, str) else ef
        out["env_file"] = [resolve_path(from_dir, i) if isinstance(i, str)
                           else {**i, "path": resolve_path(from_dir, str(i["path"]))} for i in items]
    return out


def load_project(opts: LoadOptions, profiles: list[str] | None = None,
                 services: list[str] | None = None) -> Project:
    return Loader(opts).load(profiles, services)


def load_model(opts: LoadOptions) -> dict[str, Any]:
    return Loader(opts).load_model()
