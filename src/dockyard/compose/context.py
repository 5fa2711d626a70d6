"""The project a command acts on: loaded from its files, or known by name only (``-p NAME`` with no file,
as Compose v2 allows for down, ps, logs, stop … which find everything by the project's labels)."""

from __future__ import annotations

from dockyard.compose.errors import FILE_NOT_FOUND, ComposeError
from dockyard.compose.project import Project

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.compose.cli import Context


class ProjectRef:
    def __init__(self, name: str, project: Project | None) -> None:
        self.name = name
        self.project = project

    def known_services(self) -> set[str] | None:
        if self.project is None:
            return None
        return set(self.project.services) | set(self.project.disabled)


def project_ref(ctx: Context) -> ProjectRef:
    try:
        project = ctx.project(profiles=["*"])
    except ComposeError as e:
        name = ctx.project_name_only()
        if e.code == FILE_NOT_FOUND and name:
            return ProjectRef(name, None)
        raise
    return ProjectRef(project.name, project)
