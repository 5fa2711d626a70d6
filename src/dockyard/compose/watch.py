"""``compose watch``: ``develop.watch`` rules applied as files change (sync, rebuild, sync+restart).

Changes are found by polling the watched trees' mtimes and sizes twice a second (no inotify dependency);
a sync copies the changed files into every container of the service through the archive API, a rebuild
builds the image and recreates the service's containers, sync+restart syncs then restarts them.
"""

from __future__ import annotations

import fnmatch
import io
import os
import tarfile
import time
from typing import Any

from dockyard.compose.converge import Converger, UpOptions
from dockyard.compose.errors import ComposeError
from dockyard.compose.normalize import resolve_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.compose.cli import Context


def _snapshot(root: str, ignore: list[str]) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    if os.path.isfile(root):
        st = os.stat(root)
        return {root: (st.st_mtime, st.st_size)}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not _ignored(os.path.relpath(os.path.join(d, x), root), ignore)]
        for f in files:
            p = os.path.join(d, f)
            if _ignored(os.path.relpath(p, root), ignore):
                continue
            try:
                st = os.stat(p)
            except OSError:
                continue
            out[p] = (st.st_mtime, st.st_size)
    return out


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


def _sync(ctx: Context, project: Any, rule: dict[str, Any], changed: list[str]) -> None:
    if not rule.get("target"):
        return
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in changed:
            if not os.path.exists(p):
                continue
            rel = os.path.relpath(p, rule["path"]) if os.path.isdir(rule["path"]) else os.path.basename(p)
            arc = os.path.join(str(rule["target"]).lstrip("/"), rel) if os.path.isdir(rule["path"]) \
                else str(rule["target"]).lstrip("/")
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
    snaps = [_snapshot(r["path"], r["ignore"]) for r in active]
    progress.message("Watch enabled")
    while True:
        time.sleep(0.5)
        for i, rule in enumerate(active):
            now = _snapshot(rule["path"], rule["ignore"])
            changed = [p for p, v in now.items() if snaps[i].get(p) != v] + [p for p in snaps[i] if p not in now]
            snaps[i] = now
            if not changed:
                continue
            action = rule["action"]
            progress.message(f"{action} of {len(changed)} file(s) for service {rule['service']}")
            if action in ("sync", "sync+restart", "sync+exec"):
                _sync(ctx, project, rule, changed)
            if action == "sync+restart":
                for c in ctx.engine.containers(project.name, rule["service"], all_=False):
                    ctx.engine.restart(c["Id"])
            elif action == "rebuild":
                conv.build(rule["service"])
                conv.forget_images()
                conv.converge([rule["service"]], UpOptions(recreate="diverged"))
            elif action == "restart":
                for c in ctx.engine.containers(project.name, rule["service"], all_=False):
                    ctx.engine.restart(c["Id"])
