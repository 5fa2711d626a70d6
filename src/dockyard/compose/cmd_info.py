"""The commands that look: config, ps, ls, images, top, port, events, version."""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from dockyard import __version__
from dockyard.compose import labels as L
from dockyard.compose.config_cmd import render
from dockyard.compose.context import project_ref
from dockyard.compose.errors import ComposeError
from dockyard.util.humanize import parse_time, time_ago

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.compose.cli import Context


def align(rows: list[list[str]], padding: int = 3, minwidth: int = 0) -> str:
    """Columns padded to the widest cell plus ``padding`` (at least ``minwidth``); the last column unpadded
    (Go's tabwriter)."""
    if not rows:
        return ""
    widths = [max(max(len(r[i]) for r in rows), minwidth - padding) for i in range(len(rows[0]) - 1)]
    return "".join("".join(c.ljust(w + padding) for c, w in zip(r[:-1], widths, strict=False)) + r[-1] + "\n"
                   for r in rows)


PS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
              "Project": "PROJECT", "Service": "SERVICE", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
              "State": "STATE", "Status": "STATUS", "Health": "HEALTH", "ExitCode": "EXIT CODE",
              "Ports": "PORTS", "Publishers": "PUBLISHERS", "Labels": "LABELS", "Mounts": "MOUNTS",
              "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Size": "SIZE"}


def format_rows(fmt: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    """Rows through a Go template (the engine the CLI's --format uses); "table …" adds the header line and
    aligns the tab-separated columns as Go's tabwriter does."""
    from dockyard.util.gotemplate import Template, TemplateError, prepare_format

    is_table, body = prepare_format(fmt)
    try:
        tpl = Template(body)
        lines = [tpl.execute(r) for r in rows]
        if is_table:
            lines.insert(0, tpl.execute(headers))
    except TemplateError as e:
        raise ComposeError(f"template parsing error: {e}") from None
    if not is_table:
        return "".join(line + "\n" for line in lines)
    return align([line.split("\t") for text in lines for line in text.split("\n")])


# -- config -------------------------------------------------------------------------------------------
def configure_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--services", dest="list_services", action="store_true")
    p.add_argument("--volumes", action="store_true")
    p.add_argument("--networks", action="store_true")
    p.add_argument("--profiles", action="store_true")
    p.add_argument("--images", action="store_true")
    p.add_argument("--hash")
    p.add_argument("--format", default="yaml", choices=["yaml", "json"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-interpolate", action="store_true")
    p.add_argument("--no-normalize", action="store_true")
    p.add_argument("--resolve-image-digests", action="store_true")
    p.add_argument("--no-consistency", action="store_true")
    p.add_argument("--no-path-resolution", action="store_true")
    p.add_argument("--variables", action="store_true")
    p.add_argument("--environment", action="store_true")
    p.add_argument("-o", "--output")


def run_config(args: Any, ctx: Context) -> int:
    if args.no_consistency:
        ctx.opts.consistency = False
    if args.no_path_resolution:
        ctx.opts.resolve_paths = False
    if args.variables:
        return _config_variables(args, ctx)
    if args.environment and not (args.list_services or args.volumes or args.hash or args.profiles or args.images):
        project = ctx.project(args.services)
        ctx.out.write("".join(f"{k}={v}\n" for k, v in sorted(project.environment.items())))
        return 0
    if args.no_interpolate and not (args.list_services or args.volumes or args.networks or args.profiles
                                    or args.images or args.hash):
        return _config_model(args, ctx)
    project = ctx.project(args.services, profiles=["*"] if args.profiles else None)
    if args.services:
        keep = set(project.with_dependencies(args.services))
        project.services = {k: v for k, v in project.services.items() if k in keep}
    if args.resolve_image_digests:
        project.services = {k: dict(v) for k, v in project.services.items()}
        _resolve(ctx, project.services)
    out = ctx.out
    if args.output:
        out = open(args.output, "w")  # noqa: SIM115 - closed below
    try:
        render(project, out, args.format, services=args.list_services, volumes=args.volumes,
               profiles=args.profiles, images=args.images, hash_of=args.hash, quiet=args.quiet,
               networks=args.networks, normalize=not args.no_normalize)
    finally:
        if args.output:
            out.close()
    return 0


def _resolve(ctx: Context, services: dict[str, dict[str, Any]]) -> None:
    from urllib.parse import quote

    from dockyard.compose.digests import resolve_digests

    client = ctx.engine.client
    resolve_digests(services, lambda ref: client.get(f"/distribution/{quote(ref, safe='/:@')}/json"))


def _config_variables(args: Any, ctx: Context) -> int:
    """``config --variables``: each ``${VAR}`` of the model, with its default or alternate value and whether
    it is required (``:?``), in a table as Compose v2 prints it (v2 prints the table whatever --format says)."""
    from dockyard.compose.loader import load_model
    from dockyard.compose.variables import extract_variables

    ctx.opts.interpolate = False
    found = extract_variables(load_model(ctx.opts))
    rows = [["NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"]]
    rows += [[v.name, "true" if v.required else "false", v.default, v.presence] for _n, v in sorted(found.items())]
    ctx.out.write(align(rows, minwidth=20))
    return 0


def _config_model(args: Any, ctx: Context) -> int:
    """``config --no-interpolate``: the merged model with ``${VAR}`` as written (compose/model.py)."""
    from dockyard.compose.loader import load_model
    from dockyard.compose.model import render_model

    ctx.opts.interpolate = False
    model = load_model(ctx.opts)
    if args.resolve_image_digests:
        _resolve(ctx, model["services"])
    text = render_model(model, args.format)
    if args.quiet:
        return 0
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        ctx.out.write(text)
    return 0


# -- ps ---------------------------------------------------------------------------------------------------
def configure_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--services", dest="list_services", action="store_true")
    p.add_argument("--status", action="append", default=[])
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("--format", default="table")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--orphans", action="store_true", default=True)


def display_ports(ports: list[dict[str, Any]]) -> str:
    out = []
    for p in sorted(ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("Type", ""))):
        if p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            out.append(f"{host}:{p['PublicPort']}->{p['PrivatePort']}/{p.get('Type', 'tcp')}")
        else:
            out.append(f"{p['PrivatePort']}/{p.get('Type', 'tcp')}")
    return ", ".join(dict.fromkeys(out))


def ps_row(c: dict[str, Any]) -> dict[str, Any]:
    lbl = c.get("Labels") or {}
    status = str(c.get("Status", ""))
    health = ""
    m = re.search(r"\((healthy|unhealthy|health: starting)\)", status)
    if m:
        health = "starting" if "starting" in m.group(1) else m.group(1)
    exit_code = 0
    m2 = re.match(r"Exited \((\d+)\)", status)
    if m2:
        exit_code = int(m2.group(1))
    created = float(c.get("Created") or 0)
    return {
        "Command": json.dumps(c.get("Command", "")) if c.get("Command") else '""',
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "ExitCode": exit_code, "Health": health, "ID": c["Id"], "Image": c.get("Image", ""),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(lbl.items())), "LocalVolumes": str(
            sum(1 for m in c.get("Mounts") or [] if m.get("Type") == "volume")),
        "Mounts": ",".join(str(m.get("Name") or m.get("Source", "")) for m in c.get("Mounts") or []),
        "Name": c["Names"][0].lstrip("/"), "Names": c["Names"][0].lstrip("/"),
        "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())),
        "Ports": display_ports(c.get("Ports") or []), "Project": lbl.get(L.PROJECT, ""),
        "Publishers": [{"URL": p.get("IP", ""), "TargetPort": p.get("PrivatePort", 0),
                        "PublishedPort": p.get("PublicPort", 0), "Protocol": p.get("Type", "tcp")}
                       for p in c.get("Ports") or []],
        "RunningFor": time_ago(created), "Service": lbl.get(L.SERVICE, ""), "Size": "0B",
        "State": c.get("State", ""), "Status": status,
    }


def _ps_filter(rows: list[dict[str, Any]], filters: list[str], statuses: list[str]) -> list[dict[str, Any]]:
    for f in filters:
        key, _, value = f.partition("=")
        if key == "status":
            statuses = statuses + [value]
        elif key == "source":
            pass
        else:
            raise ComposeError(f"invalid filter {key!r}")
    if statuses:
        rows = [r for r in rows if r["State"] in statuses]
    return rows


def run_ps(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    if args.list_services and ref.project is not None and not args.status and not args.filter:
        for s in sorted(ref.project.services):
            ctx.out.write(s + "\n")
        return 0
    cs = ctx.engine.containers(ref.name, all_=args.all or bool(args.status), oneoff=None)
    if not args.all:
        cs = [c for c in cs if c.get("State") != "exited" or c["Labels"].get(L.ONEOFF) == "False"]
        cs = [c for c in cs if c["Labels"].get(L.ONEOFF) == "False" or c.get("State") == "running"]
    if args.services:
        cs = [c for c in cs if c["Labels"].get(L.SERVICE) in args.services]
    rows = _ps_filter([ps_row(c) for c in cs], args.filter, args.status)
    rows.sort(key=lambda r: r["Name"])
    if args.list_services:
        for s in dict.fromkeys(r["Service"] for r in rows):
            ctx.out.write(s + "\n")
        return 0
    if args.quiet:
        for r in rows:
            ctx.out.write(r["ID"] + "\n")
        return 0
    fmt = args.format
    if fmt == "json":
        for r in rows:
            ctx.out.write(json.dumps(r) + "\n")
        return 0
    if fmt == "table":
        table = [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
        for r in rows:
            cmd = r["Command"]
            if not args.no_trunc and len(cmd) > 20:
                cmd = cmd[:19] + "…\""
            table.append([r["Name"], r["Image"], cmd, r["Service"], r["RunningFor"], r["Status"], r["Ports"]])
        ctx.out.write(align(table))
        return 0
    ctx.out.write(format_rows(fmt, rows, PS_HEADERS))
    return 0


# -- ls ---------------------------------------------------------------------------------------------------
def configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("--format", default="table")


def run_ls(args: Any, ctx: Context) -> int:
    projects = ctx.engine.project_names()
    rows = []
    for name in sorted(projects):
        cs = projects[name]
        states: dict[str, int] = {}
        for c in cs:
            states[c.get("State", "")] = states.get(c.get("State", ""), 0) + 1
        if not args.all and not states.get("running"):
            continue
        status = ", ".join(f"{s}({n})" for s, n in sorted(states.items()))
        files = cs[0]["Labels"].get(L.CONFIG_FILES, "")
        rows.append({"Name": name, "Status": status, "ConfigFiles": files})
    for f in args.filter:
        key, _, value = f.partition("=")
        if key == "name":
            rows = [r for r in rows if value in r["Name"]]
    if args.quiet:
        for r in rows:
            ctx.out.write(r["Name"] + "\n")
    elif args.format == "json":
        ctx.out.write(json.dumps(rows) + "\n")
    else:
        ctx.out.write(align([["NAME", "STATUS", "CONFIG FILES"]] +
                            [[r["Name"], r["Status"], r["ConfigFiles"]] for r in rows]))
    return 0


# -- images -------------------------------------------------------------------------------------------------
def configure_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default="table")


def run_images(args: Any, ctx: Context) -> int:
    from dockyard.util.humanize import human_size

    ref = project_ref(ctx)
    cs = ctx.engine.containers(ref.name, oneoff=None)
    if args.services:
        cs = [c for c in cs if c["Labels"].get(L.SERVICE) in args.services]
    rows = []
    for c in cs:
        img = ctx.engine.image(c.get("ImageID") or c.get("Image", "")) or {}
        tags = img.get("RepoTags") or [c.get("Image", "")]
        repo, _, tag = str(tags[0]).rpartition(":") if ":" in str(tags[0]) else (tags[0], "", "latest")
        iid = str(img.get("Id", ""))
        rows.append({"ContainerName": c["Names"][0].lstrip("/"), "Repository": repo, "Tag": tag,
                     "ID": iid, "Size": int(img.get("Size") or 0),
                     "Created": str(img.get("Created", ""))})
    if args.quiet:
        for iid in dict.fromkeys(r["ID"] for r in rows):
            ctx.out.write(iid.removeprefix("sha256:")[:12] + "\n")
        return 0
    if args.format == "json":
        ctx.out.write(json.dumps(rows) + "\n")
        return 0
    table = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for r in rows:
        table.append([r["ContainerName"], r["Repository"], r["Tag"], r["ID"].removeprefix("sha256:")[:12],
                      time_ago(parse_time(r["Created"])) if r["Created"] else "", human_size(r["Size"])])
    ctx.out.write(align(table))
    return 0


# -- top ---------------------------------------------------------------------------------------------------
def run_top(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    cs = ctx.engine.containers(ref.name, all_=False, oneoff=None)
    if args.services:
        cs = [c for c in cs if c["Labels"].get(L.SERVICE) in args.services]
    for i, c in enumerate(cs):
        top = ctx.engine.client.get(f"/containers/{c['Id']}/top")
        if i:
            ctx.out.write("\n")
        ctx.out.write(c["Names"][0].lstrip("/") + "\n")
        ctx.out.write(align([list(top.get("Titles") or [])] + [list(p) for p in top.get("Processes") or []]))
    return 0


# -- port ---------------------------------------------------------------------------------------------------
def configure_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("service")
    p.add_argument("private_port")
    p.add_argument("--protocol", default="tcp")
    p.add_argument("--index", type=int, default=1)


def run_port(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    if ref.project is not None:
        ref.project.service(args.service)
    cs = [c for c in ctx.engine.containers(ref.name, args.service)
          if int(c["Labels"].get(L.NUMBER, "0") or 0) == args.index]
    if not cs:
        raise ComposeError(f"service {args.service!r} is not running")
    port = str(args.private_port)
    for p in cs[0].get("Ports") or []:
        if str(p.get("PrivatePort")) == port and p.get("Type", "tcp") == args.protocol and p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            ctx.out.write(f"{ip}:{p['PublicPort']}\n")
            return 0
    raise ComposeError(f"no port {port}/{args.protocol} for container {cs[0]['Names'][0].lstrip('/')}: "
                       "no published port")


# -- events ---------------------------------------------------------------------------------------------------
def configure_events(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")
    p.add_argument("--json", action="store_true")
    p.add_argument("--since")
    p.add_argument("--until")


def run_events(args: Any, ctx: Context) -> int:
    ref = project_ref(ctx)
    filters = {"label": [f"{L.PROJECT}={ref.name}"], "type": ["container"]}
    for ev in ctx.engine.events(filters, since=args.since):
        actor = ev.get("Actor") or {}
        attrs = dict(actor.get("Attributes") or {})
        service = attrs.get(L.SERVICE, "")
        if args.services and service not in args.services:
            continue
        when = float(ev.get("timeNano", 0)) / 1e9 or float(ev.get("time", 0))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int((when % 1) * 1e6):06d}Z"
        action = str(ev.get("Action") or ev.get("status") or "")
        cid = str(actor.get("ID") or ev.get("id") or "")
        if args.json:
            ctx.out.write(json.dumps({"time": stamp, "type": "container", "action": action, "id": cid,
                                      "service": service, "attributes": attrs}) + "\n")
        else:
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
            ctx.out.write(f"{stamp} container {action} {cid} ({pairs})\n")
        ctx.out.flush()
    return 0


# -- version ---------------------------------------------------------------------------------------------------
def configure_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="pretty")
    p.add_argument("--short", action="store_true")


def run_version(args: Any, ctx: Context) -> int:
    """The Compose v2 release whose behaviour this follows (tools compare it), and dockyard's own version."""
    if args.short:
        ctx.out.write(f"{L.COMPOSE_VERSION}\n")
    elif args.format == "json":
        ctx.out.write(json.dumps({"version": f"v{L.COMPOSE_VERSION}", "dockyard": __version__}) + "\n")
    else:
        ctx.out.write(f"Docker Compose version v{L.COMPOSE_VERSION} (dockyard compose {__version__})\n")
    return 0


def _configure_services(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*")


COMMANDS: dict[str, tuple[Any, Any]] = {
    "config": (configure_config, run_config),
    "ps": (configure_ps, run_ps),
    "ls": (configure_ls, run_ls),
    "images": (configure_images, run_images),
    "top": (_configure_services, run_top),
    "port": (configure_port, run_port),
    "events": (configure_events, run_events),
    "version": (configure_version, run_version),
}
