"""The commands that talk to containers: exec, run, logs, attach, cp, wait, stats."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
from typing import Any

from dockyard.client.api_client import APIError
from dockyard.client.stdio import RawTerminal, pump
from dockyard.compose import labels as L
from dockyard.compose.context import project_ref
from dockyard.compose.converge import Converger, UpOptions
from dockyard.compose.errors import ComposeError
from dockyard.compose.logs import LogPrinter
from dockyard.compose.normalize import parse_port, parse_volume

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.compose.cli import Context


def _container(ctx: Context, service: str, index: int = 1) -> dict[str, Any]:
    ref = project_ref(ctx)
    if ref.project is not None:
        ref.project.service(service)
    cs = ctx.engine.containers(ref.name, service)
    for c in cs:
        if int(c["Labels"].get(L.NUMBER, "0") or 0) == index:
            return c
    raise ComposeError(f"service {service!r} is not running" if not cs
                       else f"service {service!r} has no container at index {index}")


# -- exec ---------------------------------------------------------------------------------------------------
def configure_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--index", type=int, default=1)
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true", default=True)
    p.add_argument("-t", "--tty", action="store_true", help=argparse.SUPPRESS)  # v2: hidden, a TTY is the default
    p.add_argument("service")
    p.add_argument("command", nargs=argparse.REMAINDER)


def run_exec(args: Any, ctx: Context) -> int:
    if not args.command:
        raise ComposeError("exec requires at least 2 arguments")
    c = _container(ctx, args.service, args.index)
    if c.get("State") != "running":
        raise ComposeError(f"container {c['Names'][0].lstrip('/')} is not running")
    tty = not args.no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    body = {"Cmd": args.command, "AttachStdin": not args.detach, "AttachStdout": not args.detach,
            "AttachStderr": not args.detach, "Tty": tty, "Env": args.env, "User": args.user or "",
            "WorkingDir": args.workdir or "", "Privileged": args.privileged}
    client = ctx.engine.client
    eid = client.post(f"/containers/{c['Id']}/exec", None, body)["Id"]
    if args.detach:
        client.request("POST", f"/exec/{eid}/start", None, {"Detach": True, "Tty": tty}).data  # noqa: B018
        return 0
    conn = client.hijack("POST", f"/exec/{eid}/start", None, {"Detach": False, "Tty": tty})
    try:
        with RawTerminal(sys.stdin.fileno(), tty):
            pump(conn, tty, stdin=not args.no_tty or not sys.stdin.isatty())
    finally:
        conn.close()
    return int(client.get(f"/exec/{eid}/json").get("ExitCode") or 0)


# -- run ---------------------------------------------------------------------------------------------------
def configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rm", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--service-ports", action="store_true")
    p.add_argument("--use-aliases", action="store_true")
    p.add_argument("--no-deps", action="store_true")
    p.add_argument("--entrypoint")
    p.add_argument("--name")
    p.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    p.add_argument("-t", "--tty", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-i", "--interactive", action="store_true", default=True)
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--build", action="store_true")
    p.add_argument("--pull", choices=["always", "missing", "never"])
    p.add_argument("--remove-orphans", action="store_true")
    p.add_argument("--quiet-pull", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("service")
    p.add_argument("command", nargs=argparse.REMAINDER)


def run_run(args: Any, ctx: Context) -> int:
    import shlex

    if args.tty and args.no_tty:
        raise ComposeError("--tty and --no-TTY can't be used together")
    project = ctx.project([args.service])
    svc = dict(project.service(args.service))
    progress = ctx.progress(args.quiet)
    conv = Converger(ctx.engine, project, progress)
    deps = [] if args.no_deps else [d for d in project.with_dependencies([args.service]) if d != args.service]
    opts = UpOptions(build=True if args.build else None, pull=args.pull)
    conv.ensure_images(deps + [args.service], opts)
    conv.ensure_networks(deps + [args.service])
    conv.ensure_volumes(deps + [args.service])
    if deps:
        conv.converge(deps, opts)
        for dep, spec in project.dependencies(args.service).items():
            if dep in deps:
                conv.wait_condition(dep, str((spec or {}).get("condition") or "service_started"))
    if args.command:
        svc["command"] = list(args.command)
    if args.entrypoint is not None:
        svc["entrypoint"] = shlex.split(args.entrypoint) if args.entrypoint else [""]
    env = dict(svc.get("environment") or {})
    for e in args.env:
        k, eq, v = e.partition("=")
        env[k] = v if eq else os.environ.get(k)
    svc["environment"] = env
    if args.user:
        svc["user"] = args.user
    if args.workdir:
        svc["working_dir"] = args.workdir
    if args.cap_add:  # added to the service's own, as v2's run does
        svc["cap_add"] = list(svc.get("cap_add") or []) + args.cap_add
    if args.cap_drop:
        svc["cap_drop"] = list(svc.get("cap_drop") or []) + args.cap_drop
    if not args.service_ports:
        svc["ports"] = []
    for spec in args.publish:
        svc["ports"] = list(svc.get("ports") or []) + parse_port(spec)
    if args.volume:
        svc["volumes"] = list(svc.get("volumes") or []) + [parse_volume(v, os.getcwd()) for v in args.volume]
    labels = dict(svc.get("labels") or {})
    for lb in args.label:
        k, _, v = lb.partition("=")
        labels[k] = v
    svc["labels"] = labels
    tty = not args.no_tty and sys.stdin.isatty() and sys.stdout.isatty() and not args.detach
    svc["tty"] = tty if not args.detach else bool(svc.get("tty"))
    svc["stdin_open"] = not args.detach
    if svc.get("restart"):
        svc["restart"] = "no"
    if isinstance(svc.get("deploy"), dict):
        svc["deploy"] = {k: v for k, v in svc["deploy"].items() if k != "restart_policy"}
    name = args.name or f"{project.name}-{args.service}-run-{secrets.token_hex(6)}"
    project.services[args.service] = svc
    digest = L.config_hash(svc)
    iid = conv.image_id(str(svc.get("image") or L.default_image_name(project.name, args.service)))
    cid = conv.create_container(args.service, 1, name, digest, iid, announce=False, oneoff=True,
                                overrides={"AttachStdin": not args.detach, "AttachStdout": not args.detach,
                                           "AttachStderr": not args.detach, "StdinOnce": not args.detach,
                                           "HostConfig": {"AutoRemove": bool(args.rm and args.detach)}})
    progress.close()  # the display ends before the container's output begins
    client = ctx.engine.client
    if args.detach:
        ctx.engine.start(cid)
        ctx.out.write(name + "\n")
        return 0
    conn = client.hijack("POST", f"/containers/{cid}/attach",
                         {"stream": True, "stdin": True, "stdout": True, "stderr": True})
    waiter = client.begin("POST", f"/containers/{cid}/wait", {"condition": "next-exit"})
    try:
        ctx.engine.start(cid)
        with RawTerminal(sys.stdin.fileno(), tty):
            pump(conn, tty, stdin=True)
    finally:
        conn.close()
    code = int((waiter.result() or {}).get("StatusCode", 0))
    if args.rm:
        ctx.engine.remove(cid, force=True, volumes=True)
    return code


# -- logs ---------------------------------------------------------------------------------------------------
def configure_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--no-log-prefix", action="store_true")
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--index", type=int)


def run_logs(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    cs = ctx.engine.containers(ref.name, oneoff=None)
    if args.services:
        if ref.project is not None:
            for s in args.services:
                ref.project.service(s)
        cs = [c for c in cs if c["Labels"].get(L.SERVICE) in args.services]
    if args.index:
        cs = [c for c in cs if int(c["Labels"].get(L.NUMBER, "0") or 0) == args.index]
    names = [c["Names"][0].lstrip("/") for c in cs]
    printer = LogPrinter(ctx.out, names, ctx.color(args.no_color), prefix=not args.no_log_prefix,
                         timestamps=args.timestamps)
    threads = []
    for c, name in zip(cs, names, strict=True):
        info = ctx.engine.inspect(c["Id"]) or {}
        tty = bool((info.get("Config") or {}).get("Tty"))
        if args.follow:
            threads.append(printer.follow(ctx.engine, c["Id"], name, tty, True, args.tail, args.since, args.until))
        else:
            t = threading.Thread(target=printer.copy, args=(ctx.engine, c["Id"], name, tty, False, args.tail,
                                                            args.since, args.until), daemon=True)
            t.start()
            threads.append(t)
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    return 0


# -- attach ---------------------------------------------------------------------------------------------------
def configure_attach(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("--index", type=int, default=1)
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--sig-proxy", action="store_true", default=True)
    p.add_argument("--detach-keys")


def run_attach(args: Any, ctx: Context) -> int:
    c = _container(ctx, args.service, args.index)
    info = ctx.engine.inspect(c["Id"]) or {}
    tty = bool((info.get("Config") or {}).get("Tty"))
    stdin = not args.no_stdin and bool((info.get("Config") or {}).get("OpenStdin"))
    conn = ctx.engine.client.hijack("POST", f"/containers/{c['Id']}/attach",
                                    {"stream": True, "stdin": stdin, "stdout": True, "stderr": True,
                                     "detachKeys": args.detach_keys})
    try:
        with RawTerminal(sys.stdin.fileno(), tty and stdin and sys.stdin.isatty()):
            pump(conn, tty, stdin=stdin)
    finally:
        conn.close()
    after = ctx.engine.inspect(c["Id"]) or {}
    return int((after.get("State") or {}).get("ExitCode") or 0)


# -- cp ---------------------------------------------------------------------------------------------------
def configure_cp(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--index", type=int, default=0)
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("--all", action="store_true")


def _split_cp(arg: str) -> tuple[str | None, str]:
    if ":" in arg and not arg.startswith((".", "/")):
        svc, _, path = arg.partition(":")
        return svc, path
    return None, arg


def run_cp(args: Any, ctx: Context) -> int:
    import io
    import tarfile

    src_svc, src = _split_cp(args.source)
    dst_svc, dst = _split_cp(args.dest)
    if (src_svc is None) == (dst_svc is None):
        raise ComposeError("copying between services is not supported" if src_svc
                           else "must specify at least one container source")
    client = ctx.engine.client
    if src_svc is not None:
        c = _container(ctx, src_svc, args.index or 1)
        resp = client.request("GET", f"/containers/{c['Id']}/archive", {"path": src})
        tmp = io.BytesIO()
        for piece in resp.iter_raw():
            tmp.write(piece)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp, mode="r:") as tar:
            members = tar.getmembers()
            if os.path.isdir(dst) or len(members) > 1:
                os.makedirs(dst, exist_ok=True)
                tar.extractall(dst, filter="data")
            else:
                member = members[0]
                f = tar.extractfile(member)
                with open(dst, "wb") as out:
                    out.write(f.read() if f else b"")
        return 0
    assert dst_svc is not None
    ref = project_ref(ctx)
    targets = ctx.engine.containers(ref.name, dst_svc)
    if args.index:
        targets = [c for c in targets if int(c["Labels"].get(L.NUMBER, "0") or 0) == args.index]
    if not targets:
        raise ComposeError(f"service {dst_svc!r} is not running")
    buf = io.BytesIO()
    dest_dir, name = dst, os.path.basename(src.rstrip("/"))
    if not dst.endswith("/"):
        try:
            probe = client.request("HEAD", f"/containers/{targets[0]['Id']}/archive", {"path": dst})
            stat = probe.headers.get("x-docker-container-path-stat")
            probe.close()
        except APIError:
            stat = None
        if stat is None or not _is_dir_stat(stat):
            dest_dir, name = os.path.dirname(dst) or "/", os.path.basename(dst)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(src, arcname=name)
    for c in targets:
        client.request("PUT", f"/containers/{c['Id']}/archive", {"path": dest_dir}, buf.getvalue(),
                       {"Content-Type": "application/x-tar"}).close()
    return 0


def _is_dir_stat(header: str) -> bool:
    import base64

    try:
        info = json.loads(base64.b64decode(header))
    except ValueError:
        return False
    return bool(int(info.get("mode", 0)) & (1 << 31))


# -- wait ---------------------------------------------------------------------------------------------------
def configure_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="+")
    p.add_argument("--down-project", action="store_true")


def run_wait(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    cs = [c for c in ctx.engine.containers(ref.name) if c["Labels"].get(L.SERVICE) in args.services]
    code = 0
    results: dict[str, int] = {}

    def one(c: dict[str, Any]) -> None:
        results[c["Id"]] = ctx.engine.wait(c["Id"])

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in cs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in cs:
        code = results.get(c["Id"], 0)
        ctx.out.write(f"{code}\n")
        break
    if args.down_project:
        from dockyard.compose.cmd_up import run_down

        run_down(argparse.Namespace(services=[], volumes=False, rmi=None, remove_orphans=False, timeout=None), ctx)
    return code


# -- stats ---------------------------------------------------------------------------------------------------
def configure_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format", default="table")


def run_stats(args: Any, ctx: Context) -> int:
    from dockyard.compose.cmd_info import align
    from dockyard.util.humanize import bytes_size

    ref = project_ref(ctx)
    cs = ctx.engine.containers(ref.name, all_=args.all)
    if args.services:
        cs = [c for c in cs if c["Labels"].get(L.SERVICE) in args.services]
    while True:
        rows = []
        for c in cs:
            try:
                st = ctx.engine.client.get(f"/containers/{c['Id']}/stats", {"stream": False})
            except Exception:  # noqa: BLE001 - gone meanwhile
                continue
            cpu = st.get("cpu_stats") or {}
            pre = st.get("precpu_stats") or {}
            cdelta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - \
                (pre.get("cpu_usage") or {}).get("total_usage", 0)
            sdelta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
            ncpu = cpu.get("online_cpus") or 1
            cpu_pct = (cdelta / sdelta * ncpu * 100.0) if sdelta > 0 and cdelta > 0 else 0.0
            mem = st.get("memory_stats") or {}
            usage = int(mem.get("usage") or 0)
            limit = int(mem.get("limit") or 0)
            rows.append({"ID": c["Id"][:12], "Name": c["Names"][0].lstrip("/"), "CPUPerc": f"{cpu_pct:.2f}%",
                         "MemUsage": f"{bytes_size(usage)} / {bytes_size(limit)}",
                         "MemPerc": f"{(usage / limit * 100.0) if limit else 0:.2f}%",
                         "PIDs": str((st.get("pids_stats") or {}).get("current", 0))})
        if args.format == "json":
            for r in rows:
                ctx.out.write(json.dumps(r) + "\n")
        else:
            ctx.out.write(align([["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]] +
                                [[r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["PIDs"]]
                                 for r in rows]))
        ctx.out.flush()
        if args.no_stream:
            return 0
        import time

        time.sleep(1)


COMMANDS: dict[str, tuple[Any, Any]] = {
    "exec": (configure_exec, run_exec),
    "run": (configure_run, run_run),
    "logs": (configure_logs, run_logs),
    "attach": (configure_attach, run_attach),
    "cp": (configure_cp, run_cp),
    "wait": (configure_wait, run_wait),
    "stats": (configure_stats, run_stats),
}
