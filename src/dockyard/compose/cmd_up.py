"""The commands that change a project: up, create, down, start, stop, restart, rm, kill, pause, unpause,
scale, build, pull, push, watch."""

from __future__ import annotations

import argparse
import queue
import signal as _signal
import threading
import time
from typing import Any

from dockyard.client.api_client import APIError
from dockyard.compose import labels as L
from dockyard.compose.context import ProjectRef, project_ref
from dockyard.compose.converge import Converger, UpOptions
from dockyard.compose.convert import image_ref, secret_files, size_bytes
from dockyard.compose.errors import BUILD_FAILURE, PULL_FAILURE, ComposeError
from dockyard.compose.logs import LogPrinter
from dockyard.compose.parallel import Task, run_all
from dockyard.compose.progress import Progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.compose.cli import Context


def _name(c: dict[str, Any]) -> str:
    return str(c["Names"][0]).lstrip("/")


def _scale_args(values: list[str]) -> dict[str, int]:
    out = {}
    for v in values or []:
        svc, eq, n = v.partition("=")
        if not eq or not n.isdigit():
            raise ComposeError(f"invalid --scale value {v!r} (SERVICE=NUM)")
        out[svc] = int(n)
    return out


# -- up / create ------------------------------------------------------------------------------------
def _converge_flags(p: argparse.ArgumentParser) -> None:
    """The flags `up` and `create` share (Compose v2's create flags: both converge the same way)."""
    p.add_argument("services", nargs="*")
    p.add_argument("--build", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--pull", choices=["always", "missing", "never", "build"])
    p.add_argument("--force-recreate", action="store_true")
    p.add_argument("--no-recreate", action="store_true")
    p.add_argument("--remove-orphans", action="store_true")
    p.add_argument("--scale", action="append", default=[])
    p.add_argument("--quiet-pull", action="store_true")
    p.add_argument("-y", "--yes", action="store_true")


def configure_up(p: argparse.ArgumentParser) -> None:
    _converge_flags(p)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--always-recreate-deps", action="store_true")
    p.add_argument("--no-deps", action="store_true")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--wait-timeout", type=int)
    p.add_argument("-V", "--renew-anon-volumes", action="store_true")
    p.add_argument("--no-start", action="store_true")
    p.add_argument("-t", "--timeout", type=int)
    p.add_argument("--abort-on-container-exit", action="store_true")
    p.add_argument("--abort-on-container-failure", action="store_true")
    p.add_argument("--exit-code-from")
    p.add_argument("--attach", action="append", default=[])
    p.add_argument("--no-attach", action="append", default=[])
    p.add_argument("--attach-dependencies", action="store_true")
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--no-log-prefix", action="store_true")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("-w", "--watch", action="store_true")


def _up_options(args: Any, start: bool) -> UpOptions:
    if args.build and args.no_build:
        raise ComposeError("--build and --no-build are incompatible")
    if args.force_recreate and args.no_recreate:
        raise ComposeError("--force-recreate and --no-recreate are incompatible")
    return UpOptions(recreate="force" if args.force_recreate else "never" if args.no_recreate else "diverged",
                     start=start, build=True if args.build else False if args.no_build else None,
                     pull=args.pull, no_deps=args.no_deps, scale=_scale_args(args.scale),
                     timeout=args.timeout, renew_anon_volumes=getattr(args, "renew_anon_volumes", False),
                     remove_orphans=args.remove_orphans, quiet_pull=getattr(args, "quiet_pull", False))


def _converge(ctx: Context, args: Any, start: bool) -> tuple[Converger, list[str], dict[str, list[str]]]:
    project = ctx.project(args.services)
    for s in args.services:
        project.service(s)
    if args.exit_code_from if hasattr(args, "exit_code_from") else None:
        project.service(args.exit_code_from)
    targets = list(args.services) or list(project.services)
    services = targets if args.no_deps else project.with_dependencies(targets)
    progress = ctx.progress()
    conv = Converger(ctx.engine, project, progress)
    opts = _up_options(args, start)
    for s in opts.scale:
        project.service(s)
    conv.prefetch(services)
    if not args.remove_orphans:
        orphans = conv.orphans()
        if orphans:
            ctx.warn(f"Found orphan containers ([{' '.join(orphans)}]) for this project. If you removed or "
                     "renamed this service in your compose file, you can run this command with the "
                     "--remove-orphans flag to clean it up.")
    for s in services:  # refused before anything is made: external secrets/configs, missing files
        secret_files(project, project.services[s])
    try:
        conv.ensure_images(services, opts)
        conv.ensure_networks(services)
        conv.ensure_volumes(services)
        result = conv.converge(services, opts)
    except (ComposeError, APIError):
        made = progress.created()
        if made:
            progress.message("created before the failure (`compose down` removes them): " + ", ".join(made))
        raise
    return conv, targets, result


def run_up(args: Any, ctx: Context) -> int:
    if args.exit_code_from or args.abort_on_container_exit or args.abort_on_container_failure:
        if args.detach:
            raise ComposeError("--abort-on-container-exit and --detach are incompatible")
    if args.wait and not args.detach:
        args.detach = True
    started = time.time()
    conv, targets, result = _converge(ctx, args, start=not args.no_start)
    if args.no_start:
        return 0
    if args.wait:
        ids = [cid for s in targets for cid in result.get(s, [])]
        conv.wait_running(ids, args.wait_timeout)
        return 0
    if args.detach:
        return 0
    conv.progress.close()  # the display ends before the containers' output begins
    attach = [s for s in (args.attach or (conv.project.ordered() if args.attach_dependencies
                                           else conv.project.ordered(targets)))
              if s not in args.no_attach]
    return attached(ctx, conv, attach, started, args)


def attached(ctx: Context, conv: Converger, services: list[str], since: float, args: Any) -> int:
    engine = conv.engine
    project = conv.project
    containers = [c for s in services for c in engine.containers(project.name, s)]
    printer = LogPrinter(ctx.out, [_name(c) for c in containers], ctx.color(args.no_color),
                         prefix=not args.no_log_prefix, timestamps=args.timestamps)
    ended: queue.Queue[dict[str, Any] | None] = queue.Queue()
    if not containers:
        return 0
    for c in containers:
        info = engine.inspect(c["Id"]) or {}
        tty = bool((info.get("Config") or {}).get("Tty"))
        printer.follow(engine, c["Id"], _name(c), tty, since=str(int(since) - 1),
                       on_end=_putter(ended, c))
    ctx.err.write("Attaching to " + ", ".join(_name(c) for c in containers) + "\n")
    ctx.err.flush()
    interrupted = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            if interrupted.is_set():
                raise KeyboardInterrupt
            interrupted.set()
            ended.put(None)
        previous = _signal.signal(_signal.SIGINT, on_sigint)
        _signal.signal(_signal.SIGTERM, on_sigint)
    remaining = {c["Id"] for c in containers}
    code = 0
    exit_from_code: int | None = None
    abort = args.abort_on_container_exit or bool(args.exit_code_from)
    try:
        while remaining:
            item = ended.get()
            if item is None:
                ctx.err.write("Gracefully stopping... (press Ctrl+C again to force)\n")
                _stop_all(conv, containers, args.timeout)
                return 130
            c = item
            if c.get("__gone__"):  # stopped or removed instead of restarted
                remaining.discard(c["Id"])
                continue
            info = engine.inspect(c["Id"]) or {}
            exit_code = int((info.get("State") or {}).get("ExitCode", 0) or 0)
            printer.note(_name(c), f"exited with code {exit_code}")
            svc = c["Labels"].get(L.SERVICE)
            stopping = abort or (args.abort_on_container_failure and exit_code != 0)
            if not stopping and _will_restart(info):
                # its restart policy brings it back: keep following it, as Compose v2 does
                Task(_refollow(engine, printer, c, info, ended))
                continue
            remaining.discard(c["Id"])
            if args.exit_code_from and svc == args.exit_code_from:
                exit_from_code = exit_code
            if abort or (args.abort_on_container_failure and exit_code != 0):
                if not args.exit_code_from or svc == args.exit_code_from or abort:
                    if remaining:
                        ctx.err.write("Aborting on container exit...\n")
                    _stop_all(conv, [x for x in containers if x["Id"] in remaining], args.timeout)
                    if args.exit_code_from:
                        if exit_from_code is None:
                            info2 = engine.inspect(_container_of(containers, args.exit_code_from)) or {}
                            exit_from_code = int((info2.get("State") or {}).get("ExitCode", 0) or 0)
                        return exit_from_code
                    return exit_code
        return exit_from_code if exit_from_code is not None else code
    finally:
        if previous is not None:
            _signal.signal(_signal.SIGINT, previous)


def tty_of(info: dict[str, Any]) -> bool:
    return bool((info.get("Config") or {}).get("Tty"))


def _will_restart(info: dict[str, Any]) -> bool:
    """Its restart policy may bring this exited container back (whether it does, its events tell)."""
    state = info.get("State") or {}
    if state.get("Restarting") or state.get("Running"):
        return True
    policy = (info.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and int(state.get("ExitCode") or 0) != 0:
        retries = int(policy.get("MaximumRetryCount") or 0)
        return retries == 0 or int(info.get("RestartCount") or 0) < retries
    return False


def _epoch(rfc3339: str) -> float:
    """An Engine API time stamp (nanoseconds, Z) as Unix seconds; 0 when there is none."""
    from datetime import datetime

    day, _, frac = rfc3339.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(day + "+00:00").timestamp() + float("0." + (frac or "0"))
    except ValueError:
        return 0.0


def _refollow(engine: Any, printer: LogPrinter, c: dict[str, Any], info: dict[str, Any],
              ended: queue.Queue[dict[str, Any] | None]) -> Any:
    """Wait for the container's next start (its restart) and follow its logs again; a stop or removal
    instead ends it for good."""
    finished = _epoch(str((info.get("State") or {}).get("FinishedAt") or "")) or time.time() - 1

    def run() -> None:
        try:
            stream = engine.container_events(c["Id"], ["start", "destroy", "stop"], since=finished)
        except APIError:
            ended.put({**c, "__gone__": True})
            return
        try:
            for ev in stream.iter_json():
                action = str((ev or {}).get("Action") or "")
                if action == "start":
                    # what the new run writes comes after the previous run ended
                    printer.follow(engine, c["Id"], _name(c), tty_of(info), since=f"{finished:.6f}",
                                   on_end=_putter(ended, c))
                    return
                if action in ("destroy", "stop"):
                    break
        except OSError:
            pass
        finally:
            stream.close()
        ended.put({**c, "__gone__": True})

    return run


def _putter(q: queue.Queue[dict[str, Any] | None], c: dict[str, Any]) -> Any:
    return lambda: q.put(c)


def _container_of(containers: list[dict[str, Any]], service: str) -> str:
    for c in containers:
        if c["Labels"].get(L.SERVICE) == service:
            return str(c["Id"])
    return ""


def _stop_all(conv: Converger, containers: list[dict[str, Any]], timeout: int | None) -> None:
    def stop(c: dict[str, Any]) -> None:
        conv.progress.event("Container", _name(c), "Stopping")
        try:
            conv.engine.stop(c["Id"], timeout)
        except APIError:
            pass
        conv.progress.event("Container", _name(c), "Stopped")

    run_all(stop, containers)


def configure_create(p: argparse.ArgumentParser) -> None:
    _converge_flags(p)


def run_create(args: Any, ctx: Context) -> int:
    args.no_deps = False
    args.timeout = None
    _converge(ctx, args, start=False)
    return 0


# -- down ---------------------------------------------------------------------------------------------
def configure_down(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("--rmi", choices=["local", "all"])
    p.add_argument("--remove-orphans", action="store_true")
    p.add_argument("-t", "--timeout", type=int)


def _reverse_levels(ref: ProjectRef, services: list[str]) -> list[list[str]]:
    """Services grouped so that every dependent is stopped before what it depends on."""
    if ref.project is None:
        return [services]
    order = ref.project.ordered([s for s in services if s in ref.project.services])
    extra = [s for s in services if s not in order]
    depth: dict[str, int] = {}
    for s in order:
        deps = [d for d in ref.project.dependencies(s) if d in depth]
        depth[s] = 1 + max([depth[d] for d in deps] or [-1])
    levels: dict[int, list[str]] = {}
    for s, d in depth.items():
        levels.setdefault(d, []).append(s)
    out = [levels[k] for k in sorted(levels, reverse=True)]
    return ([extra] if extra else []) + out


def _stop_remove(ctx: Context, ref: ProjectRef, containers: list[dict[str, Any]], progress: Progress,
                 timeout: int | None, remove: bool, volumes: bool = False) -> None:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for c in containers:
        by_service.setdefault(c["Labels"].get(L.SERVICE, ""), []).append(c)
    engine = ctx.engine

    def one(c: dict[str, Any]) -> None:
        name = _name(c)
        if c.get("State") in ("running", "paused", "restarting"):
            progress.event("Container", name, "Stopping")
            engine.stop(c["Id"], timeout)
            progress.event("Container", name, "Stopped")
        if remove:
            progress.event("Container", name, "Removing")
            engine.remove(c["Id"], force=True, volumes=volumes)
            progress.event("Container", name, "Removed")

    for level in _reverse_levels(ref, list(by_service)):
        batch = [c for s in level for c in by_service.get(s, [])]
        if batch:
            run_all(one, batch)


def run_down(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    engine = ctx.engine
    progress = ctx.progress()
    all_cs = engine.containers(ref.name, oneoff=None)
    known = ref.known_services()
    chosen = set(args.services)
    if known is not None and not args.remove_orphans:
        orphans = [c for c in all_cs if c["Labels"].get(L.SERVICE) not in known]
        if orphans and not chosen:
            ctx.warn(f"Found orphan containers ([{' '.join(_name(c) for c in orphans)}]) for this project. If you "
                     "removed or renamed this service in your compose file, you can run this command with the "
                     "--remove-orphans flag to clean it up.")
        all_cs = [c for c in all_cs if c["Labels"].get(L.SERVICE) in known]
    if chosen:
        all_cs = [c for c in all_cs if c["Labels"].get(L.SERVICE) in chosen]
    _stop_remove(ctx, ref, all_cs, progress, args.timeout, remove=True, volumes=args.volumes)
    if chosen:
        return 0
    if ref.project is not None:
        nets = [n["name"] for n in ref.project.networks.values() if not n.get("external")]
    else:
        nets = []
    nets += [n["Name"] for n in engine.networks(ref.name) if n["Name"] not in nets]
    for name in nets:
        if engine.network(name) is None:
            continue
        progress.event("Network", name, "Removing")
        try:
            engine.remove_network(name)
        except APIError as e:
            progress.event("Network", name, "Error")
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            continue
        progress.event("Network", name, "Removed")
    if args.volumes:
        vols = [v["name"] for v in ref.project.volumes.values() if not v.get("external")] if ref.project else []
        vols += [v["Name"] for v in engine.volumes(ref.name) if v["Name"] not in vols]
        for name in vols:
            if engine.volume(name) is None:
                continue
            progress.event("Volume", name, "Removing")
            engine.remove_volume(name)
            progress.event("Volume", name, "Removed")
    if args.rmi and ref.project is not None:
        for s, svc in sorted(ref.project.services.items()):
            if args.rmi == "local" and svc.get("image"):
                continue
            image = image_ref(ref.project, s, svc)
            if engine.image(image) is None:
                continue
            progress.event("Image", image, "Removing")
            if engine.remove_image(image):
                progress.event("Image", image, "Removed")
    return 0


# -- start / stop / restart / kill / pause / unpause / rm ------------------------------------------------
def configure_services(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")


def configure_stop(p: argparse.ArgumentParser) -> None:
    configure_services(p)
    p.add_argument("-t", "--timeout", type=int)


def _selected(ctx: Context, ref: ProjectRef, services: list[str], all_: bool = True) -> list[dict[str, Any]]:
    for s in services:
        if ref.project is not None:
            ref.project.service(s)
    cs = ctx.engine.containers(ref.name, all_=all_)
    if services:
        cs = [c for c in cs if c["Labels"].get(L.SERVICE) in services]
    return cs


def run_start(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    progress = ctx.progress()
    cs = _selected(ctx, ref, args.services)
    if not cs:
        raise ComposeError("service " + (args.services[0] if args.services else "") +
                           " has no container to start" if args.services else "no container to start")
    by_service: dict[str, list[dict[str, Any]]] = {}
    for c in cs:
        by_service.setdefault(c["Labels"].get(L.SERVICE, ""), []).append(c)
    order = ref.project.ordered(list(by_service)) if ref.project else sorted(by_service)
    order += [s for s in by_service if s not in order]
    for s in order:
        for c in by_service[s]:
            if c.get("State") == "running":
                continue
            progress.event("Container", _name(c), "Starting")
            ctx.engine.start(c["Id"])
            progress.event("Container", _name(c), "Started")
    return 0


def run_stop(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    _stop_remove(ctx, ref, _selected(ctx, ref, args.services), ctx.progress(), args.timeout, remove=False)
    return 0


def configure_restart(p: argparse.ArgumentParser) -> None:
    configure_stop(p)
    p.add_argument("--no-deps", action="store_true")


def run_restart(args: Any, ctx: Context) -> int:
    """Restart the services' containers, and (unless --no-deps) those depending on them with restart: true."""
    ref = project_ref(ctx)
    progress = ctx.progress()
    names = list(args.services)
    if names and ref.project is not None and not args.no_deps:
        for s, svc in ref.project.services.items():
            if s not in names and any((spec or {}).get("restart") and dep in names
                                      for dep, spec in (svc.get("depends_on") or {}).items()):
                names.append(s)
    cs = _selected(ctx, ref, names)

    def one(c: dict[str, Any]) -> None:
        progress.event("Container", _name(c), "Restarting")
        ctx.engine.restart(c["Id"], args.timeout)
        progress.event("Container", _name(c), "Started")

    run_all(one, cs)
    return 0


def configure_kill(p: argparse.ArgumentParser) -> None:
    configure_services(p)
    p.add_argument("-s", "--signal", default="SIGKILL")
    p.add_argument("--remove-orphans", action="store_true")


def run_kill(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    progress = ctx.progress()
    for c in _selected(ctx, ref, args.services, all_=False):
        progress.event("Container", _name(c), "Killing")
        ctx.engine.kill(c["Id"], args.signal)
        progress.event("Container", _name(c), "Killed")
    return 0


def run_pause(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    progress = ctx.progress()
    for c in _selected(ctx, ref, args.services, all_=False):
        if c.get("State") == "paused":
            continue
        progress.event("Container", _name(c), "Pausing")
        ctx.engine.pause(c["Id"])
        progress.event("Container", _name(c), "Paused")
    return 0


def run_unpause(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    progress = ctx.progress()
    for c in _selected(ctx, ref, args.services):
        if c.get("State") != "paused":
            continue
        progress.event("Container", _name(c), "Unpausing")
        ctx.engine.unpause(c["Id"])
        progress.event("Container", _name(c), "Unpaused")
    return 0


def configure_rm(p: argparse.ArgumentParser) -> None:
    configure_services(p)
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-s", "--stop", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")


def run_rm(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    progress = ctx.progress()
    cs = _selected(ctx, ref, args.services)
    if args.stop:
        _stop_remove(ctx, ref, cs, progress, None, remove=False)
        cs = _selected(ctx, ref, args.services)
    stopped = [c for c in cs if c.get("State") not in ("running", "paused", "restarting")]
    if not stopped:
        ctx.err.write("No stopped containers\n")
        return 0
    if not args.force:
        ctx.err.write("Going to remove " + " ".join(_name(c) for c in stopped) + "\n")
    for c in stopped:
        progress.event("Container", _name(c), "Removing")
        ctx.engine.remove(c["Id"], volumes=args.volumes)
        progress.event("Container", _name(c), "Removed")
    return 0


# -- scale ----------------------------------------------------------------------------------------------
def configure_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("pairs", nargs="+")
    p.add_argument("--no-deps", action="store_true")


def run_scale(args: Any, ctx: Context) -> int:
    scale = _scale_args(args.pairs)
    ns = argparse.Namespace(services=list(scale), build=False, no_build=False, pull=None, force_recreate=False,
                            no_recreate=True, no_deps=args.no_deps, scale=args.pairs, timeout=None,
                            remove_orphans=False, exit_code_from=None)
    _converge(ctx, ns, start=True)
    return 0


# -- build / pull / push ----------------------------------------------------------------------------------
def configure_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--push", action="store_true")
    p.add_argument("--with-dependencies", action="store_true")
    p.add_argument("-m", "--memory", help="memory limit of the build's step containers (e.g. 512m)")
    p.add_argument("--ssh", default="", help="SSH agent or keys for the build (not supported: no SSH forwarding)")
    p.add_argument("--builder", default="", help="builder to use (only the daemon's own, \"default\")")
    p.add_argument("--progress", choices=["auto", "tty", "plain", "json", "quiet"], help=argparse.SUPPRESS)


def run_build(args: Any, ctx: Context) -> int:
    if args.builder not in ("", "default"):
        raise ComposeError(f'no builder "{args.builder}" found')
    if args.progress:  # Compose v2's deprecated spelling of the top-level --progress
        ctx.progress_mode = args.progress
    project = ctx.project(args.services)
    names = args.services or sorted(project.services)
    if args.with_dependencies:
        names = project.with_dependencies(names)
    from dockyard.compose.build import build_image

    memory = size_bytes(args.memory) if args.memory else None
    progress = ctx.progress(args.quiet)
    for s in names:
        svc = project.service(s)
        if not svc.get("build"):
            continue
        if args.ssh or svc["build"].get("ssh"):  # Compose v2's words for a builder without SSH forwarding
            raise ComposeError("the classic builder doesn't support SSH keys", BUILD_FAILURE)
        for a in args.build_arg:
            k, eq, v = a.partition("=")
            svc["build"].setdefault("args", {})[k] = v if eq else project.environment.get(k)
        build_image(ctx.engine, project, s, progress, no_cache=args.no_cache, pull=args.pull, quiet=args.quiet,
                    memory=memory)
        if args.push:
            _push(ctx, image_ref(project, s, svc), progress)
    return 0


def configure_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--ignore-pull-failures", action="store_true")
    p.add_argument("--ignore-buildable", action="store_true")
    p.add_argument("--include-deps", action="store_true")
    p.add_argument("--policy", choices=["missing", "always"])
    # deprecated in Compose v2 and ignored there too: images are always pulled in parallel
    p.add_argument("--parallel", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-parallel", action="store_true", help=argparse.SUPPRESS)


def run_pull(args: Any, ctx: Context) -> int:
    project = ctx.project(args.services)
    names = args.services or sorted(project.services)
    if args.include_deps:
        names = project.with_dependencies(names)
    progress = ctx.progress(args.quiet)
    conv = Converger(ctx.engine, project, progress)
    failed = None
    for s in names:
        svc = project.service(s)
        if not svc.get("image") or (svc.get("build") and args.ignore_buildable):
            continue
        if svc.get("build") and ctx.engine.image(str(svc["image"])) is None:
            pass
        if args.policy == "missing" and ctx.engine.image(str(svc["image"])) is not None:
            continue
        try:
            conv.pull(s, str(svc["image"]))
        except ComposeError as e:
            if svc.get("build"):
                ctx.warn(f"{s} pull failed; the image is built instead: {e.message}")
                continue
            if not args.ignore_pull_failures:
                raise
            failed = e
    if failed is not None:
        ctx.err.write(failed.message + "\n")
    return 0


def _push(ctx: Context, ref: str, progress: Progress) -> None:
    progress.event("Image", ref, "Pushing")
    try:
        for msg in ctx.engine.push(ref):
            if isinstance(msg, dict) and msg.get("error"):
                progress.event("Image", ref, "Error")
                raise ComposeError(str(msg["error"]), PULL_FAILURE)
    except APIError as e:
        progress.event("Image", ref, "Error")
        raise ComposeError(f"Error response from daemon: {e.message}") from None
    progress.event("Image", ref, "Pushed")


def configure_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--ignore-push-failures", action="store_true")
    p.add_argument("--include-deps", action="store_true")


def run_push(args: Any, ctx: Context) -> int:
    project = ctx.project(args.services)
    names = args.services or sorted(project.services)
    if args.include_deps:
        names = project.with_dependencies(names)
    progress = ctx.progress(args.quiet)
    for s in names:
        svc = project.service(s)
        if not svc.get("image"):
            continue
        try:
            _push(ctx, str(svc["image"]), progress)
        except ComposeError:
            if not args.ignore_push_failures:
                raise
    return 0


def _watch(args: Any, ctx: Context) -> int:
    from dockyard.compose.watch import run_watch

    return run_watch(args, ctx)


def configure_watch(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--no-up", action="store_true")
    p.add_argument("--prune", action="store_true")
    p.add_argument("--quiet", action="store_true")


COMMANDS: dict[str, tuple[Any, Any]] = {
    "up": (configure_up, run_up),
    "create": (configure_create, run_create),
    "down": (configure_down, run_down),
    "start": (configure_services, run_start),
    "stop": (configure_stop, run_stop),
    "restart": (configure_restart, run_restart),
    "kill": (configure_kill, run_kill),
    "pause": (configure_services, run_pause),
    "unpause": (configure_services, run_unpause),
    "rm": (configure_rm, run_rm),
    "scale": (configure_scale, run_scale),
    "build": (configure_build, run_build),
    "pull": (configure_pull, run_pull),
    "push": (configure_push, run_push),
    "watch": (configure_watch, _watch),
}
