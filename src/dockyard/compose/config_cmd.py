"""``compose config``: the resolved model in Compose v2's canonical form (compose/canonical.py), or one
aspect of it (--services, --volumes, --networks, --profiles, --images, --hash), one name a line.

Compose v2 lists volumes, networks and images in Go's map order, which is unspecified; here they are
sorted (by name, images by service name), so the output is stable. Services come in dependency order,
as v2 walks them.
"""

from __future__ import annotations

from typing import IO

from dockyard.compose import canonical
from dockyard.compose.errors import ComposeError
from dockyard.compose.labels import default_image_name
from dockyard.compose.project import Project
from dockyard.compose.servicehash import service_hash


def render(project: Project, out: IO[str], fmt: str = "yaml", services: bool = False, volumes: bool = False,
           profiles: bool = False, images: bool = False, hash_of: str | None = None, quiet: bool = False,
           networks: bool = False, normalize: bool = True) -> None:
    if quiet:
        return
    if services:
        for name in project.ordered():
            out.write(name + "\n")
        return
    if volumes or networks:
        for name in sorted(project.volumes if volumes else project.networks):
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
        names = project.services if hash_of == "*" else [s.strip() for s in hash_of.split(",")]
        for name in sorted(names):  # v2 prints them in its sorted service-name order
            out.write(f"{name} {service_hash(project.service(name), env_files_read=False)}\n")
        return
    if fmt == "json":
        out.write(canonical.to_json(project, normalize))
    elif fmt == "yaml":
        out.write(canonical.to_yaml(project, normalize))
    else:
        raise ComposeError(f'unsupported format "{fmt}"')
