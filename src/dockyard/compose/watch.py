"""``compose watch``: ``develop.watch`` rules applied as files change (sync, rebuild, sync+restart).

The kernel reports changes (inotify, compose/inotify.py); a burst of them is handled as one change set;
a sync copies the changed files into every container of the service through the archive API, a rebuild
builds the image and recreates the service's containers, sync+restart syncs then restarts them.
"""

from __future__ import annotations

import fnmatch
import io
import os
import tarfile
from typing import Any

from dockyard.compose.converge import Converger, UpOptions
from dockyard.compose.errors import ComposeError
from dockyard.compose.normalize import resolve_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.compose.cli import Context


def _ignored(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(os.path.basename(rel), p) or rel.startswith(p.rstrip("/") + "/")
               for p in patterns)


def rules(ctx: Context, project: Any, services: list[str]) -> list[dict[str, Any]]:
    out = []
    for s in services:
        svc = project.service(s)
        for rule in ((svc.get("develop") or {}).get("watch") or []):
            base = project.working_dir
            out.append({"service": s, "action": rule["action"], "path": resolve_path(base, str(rule["path"])),
                        "target": rule.get("target"), "ignore": list(rule.get("ignore") or [])})
    return out


def _container_path(rule: dict[str, Any], host_path: str) -> str:
    """Where a path under the rule's host path lands in the container (relative to /)."""
    root, target = rule["path"], str(rule["target"]).lstrip("/")
    if host_path == root:
        return target
    return os.path.join(target, os.path.relpath(host_path, root))


def _sync(ctx: Context, project: Any, rule: dict[str, Any], changed: list[str]) -> None:
    """Copy what exists into the containers; what is gone on the host is removed there (``rm -rf``, as
    Compose v2 does), before the copy so a path deleted and made again ends as the host has it."""
    if not rule.get("target"):
        return
    gone = sorted("/" + _container_path(rule, p) for p in changed if not os.path.lexists(p))
    buf = io.BytesIO()
    dirs: set[str] = set()
    present = [p for p in changed if os.path.lexists(p)]
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in present:
            arc = _container_path(rule, p)
            parts = arc.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            tar.add(p, arcname=arc)
    for c in ctx.engine.containers(project.name, rule["service"], all_=False):
        if gone:
            ctx.engine.exec_wait(c["Id"], ["rm", "-rf", *gone])
        if present:
            ctx.engine.put_archive(c["Id"], "/", buf.getvalue())


def run_watch(args: Any, ctx: Context) -> int:
    project = ctx.project(args.services)
    services = args.services or sorted(project.services)
    active = rules(ctx, project, services)
    if not active:
        raise ComposeError("none of the selected services is configured for watch, consider setting a "
                           "'develop' section")
    progress = ctx.progress(args.quiet)
    conv = Converger(ctx.engine, project, progress)
    if not args.no_up:
        opts = UpOptions()
        targets = project.with_dependencies(services)
        conv.ensure_images(targets, opts)
        conv.ensure_networks(targets)
        conv.ensure_volumes(targets)
        conv.converge(targets, opts)
    from dockyard.compose.inotify import InotifyError, TreeWatcher

    try:
        watcher = TreeWatcher([r["path"] for r in active])
    except InotifyError as e:
        raise ComposeError(f"watch: {e.strerror}") from None
    progress.message("Watch enabled")
    with watcher:
        while True:
            changed_all = watcher.changes()
            for rule in active:
                changed = _matching(rule, changed_all)
                if changed:
                    _apply(ctx, project, conv, progress, rule, changed)


def _matching(rule: dict[str, Any], paths: list[str]) -> list[str]:
    """The changed paths a rule covers: its file, or what is under its directory and not ignored."""
    root = rule["path"]
    out = []
    for p in paths:
        if p == root:
            out.append(p)
        elif p.startswith(root.rstrip("/") + "/") and not _ignored(os.path.relpath(p, root), rule["ignore"]):
            out.append(p)
    return out


def _apply(ctx: Context, project: Any, conv: Converger, progress: Any, rule: dict[str, Any],
           changed: list[str]) -> None:
    action = rule["action"]
    progress.message(f"{action} of {len(changed)} file(s) for service {rule['service']}")
    if action in ("sync", "sync+restart", "sync+exec"):
        _sync(ctx, project, rule, changed)
    if action in ("sync+restart", "restart"):
        for c in ctx.engine.containers(project.name, rule["service"], all_=False):
            ctx.engine.restart(c["Id"])
    elif action == "rebuild":
        conv.build(rule["service"])
        conv.forget_images()
        conv.converge([rule["service"]], UpOptions(recreate="diverged"))
