"""The loaded project: its name, directory, files and normalized sections, and the service graph.

Services are normalized (long syntax everywhere) so that everything downstream reads one form: the
config output, the config hash and the translation to Engine API requests.
"""

from __future__ import annotations

from typing import Any

from dockyard.compose.errors import ProjectError


class Project:
    def __init__(self, name: str, working_dir: str, config_files: list[str], services: dict[str, dict[str, Any]],
                 environment: dict[str, str] | None = None, disabled: dict[str, dict[str, Any]] | None = None,
                 profiles: list[str] | None = None) -> None:
        self.name = name
        self.working_dir = working_dir
        self.config_files = config_files
        self.services = services
        self.networks: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.environment = dict(environment or {})
        self.disabled = dict(disabled or {})  # services of inactive profiles
        self.profiles = list(profiles or [])  # the active ones
        # top-level ``x-*`` keys, as written (after interpolation): compose-go's Project.Extensions
        self.extensions: dict[str, Any] = {}

    def service(self, name: str) -> dict[str, Any]:
        if name not in self.services:
            if name in self.disabled:
                raise ProjectError(f"service {name!r} is not enabled by the active profiles")
            raise ProjectError(f"no such service: {name}")
        return self.services[name]

    def dependencies(self, name: str) -> dict[str, dict[str, Any]]:
        """Services ``name`` depends on (depends_on, links, volumes_from and network_mode: service:)."""
        svc = self.services[name]
        deps: dict[str, dict[str, Any]] = dict(svc.get("depends_on") or {})
        for link in svc.get("links") or []:
            target = str(link).split(":")[0]
            deps.setdefault(target, {"condition": "service_started", "required": True})
        for vf in svc.get("volumes_from") or []:
            src = str(vf).split(":")[0]
            if not src.startswith("container") and src in self.services:
                deps.setdefault(src, {"condition": "service_started", "required": True})
        mode = str(svc.get("network_mode") or "")
        if mode.startswith("service:"):
            deps.setdefault(mode[len("service:"):], {"condition": "service_started", "required": True})
        return deps

    def with_dependencies(self, names: list[str]) -> list[str]:
        """``names`` plus everything they transitively depend on, in dependency order."""
        seen: list[str] = []

        def visit(n: str) -> None:
            if n in seen or n not in self.services:
                return
            for d in self.dependencies(n):
                visit(d)
            seen.append(n)

        for n in names:
            visit(n)
        return seen

    def dependents(self, name: str) -> list[str]:
        return [s for s in self.services if name in self.dependencies(s)]

    def ordered(self, names: list[str] | None = None) -> list[str]:
        """Services in dependency order (dependencies first); ``names`` restricts to those."""
        selected = set(names) if names is not None else set(self.services)
        return [s for s in self.with_dependencies(sorted(self.services)) if s in selected]


def check_graph(services: dict[str, dict[str, Any]], disabled: dict[str, dict[str, Any]],
                check_undefined: bool = True) -> None:
    """Compose v2's errors for an undefined dependency and for a cycle in depends_on."""
    for name in sorted(services) if check_undefined else []:
        for dep, spec in (services[name].get("depends_on") or {}).items():
            if dep in services:
                continue
            if not (spec or {}).get("required", True):
                continue
            if dep in disabled:
                raise ProjectError(
                    f'service "{dep}" was pulled in as a dependency of service "{name}" but is not enabled by '
                    f'the active profiles. You may fix this by adding a common profile to "{dep}" and "{name}".')
            raise ProjectError(f'service "{name}" depends on undefined service "{dep}": invalid compose project')
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for dep in (services[n].get("depends_on") or {}):
            if dep not in services:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep] if dep in path else [n, dep]
                raise ProjectError("dependency cycle detected: " + " -> ".join(cycle))
            if state.get(dep) is None:
                visit(dep, path + [dep])
        state[n] = 2

    for n in sorted(services):
        if state.get(n) is None:
            visit(n, [n])
