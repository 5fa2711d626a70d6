"""Volume commands: volume create/ls/inspect/rm/prune, with the docker CLI's flags, output and exit codes."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.commands.inspect import inspect_each
from dockyard.cli.commands.lifecycle import confirm, filters_query
from dockyard.cli.commands.objlist import labels_text, remove_each, write_list
from dockyard.cli.format.output import Row


def _q(name: str) -> str:
    return quote(name, safe="")


def _kv(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k:
            raise CLIError(f'invalid argument "{item}" for "{flag}" flag', 125)
        out[k] = v if sep else ""
    return out


# ------------------------------------------------------------------------------------------ create
def configure_create(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard volume create [OPTIONS] [VOLUME]"
    p.add_argument("name", nargs="?", default="", metavar="VOLUME")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--name", dest="name_flag", default="", help=argparse.SUPPRESS)


def run_create(args: argparse.Namespace, ctx: CLIContext) -> int:
    if args.name and args.name_flag and args.name != args.name_flag:
        raise CLIError("conflicting options: cannot specify a volume-name through both --name and as a "
                       "positional arg", 1)
    body = {"Name": args.name or args.name_flag, "Driver": args.driver,
            "DriverOpts": _kv(args.opt, "--opt"), "Labels": _kv(args.label, "--label")}
    vol = ctx.client.post("/volumes/create", None, body) or {}
    ctx.out.write(f"{vol.get('Name', '')}\n")
    return 0


# ------------------------------------------------------------------------------------------ ls
_LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
               "Group": "GROUP", "Status": "STATUS"}


def configure_ls(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard volume ls [OPTIONS]"
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--cluster", action="store_true")


def run_ls(args: argparse.Namespace, ctx: CLIContext) -> int:
    resp = ctx.client.get("/volumes", {"filters": filters_query(args.filter)}) or {}
    vols = sorted(resp.get("Volumes") or [], key=lambda v: v["Name"])
    rows = [Row({"Name": v["Name"], "Driver": v.get("Driver", "local"), "Scope": v.get("Scope", "local"),
                 "Mountpoint": v.get("Mountpoint", ""),
                 "Labels": labels_text(v.get("Labels")),
                 "Links": "N/A", "Size": "N/A", "Availability": "N/A", "Group": "N/A", "Status": "N/A"})
            for v in vols]
    write_list(ctx, rows, fmt=args.format, quiet=args.quiet, key="Name", headers=_LS_HEADERS,
               default_table="table {{.Driver}}\t{{.Name}}")
    return 0


# ------------------------------------------------------------------------------------------ inspect
def configure_inspect(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard volume inspect [OPTIONS] VOLUME [VOLUME...]"
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--format", default="")


def run_inspect(args: argparse.Namespace, ctx: CLIContext) -> int:
    return inspect_each(ctx, "volume", [f"/volumes/{_q(name)}" for name in args.volumes], args.format)


# ------------------------------------------------------------------------------------------ rm
def configure_rm(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard volume rm [OPTIONS] VOLUME [VOLUME...]"
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--force", action="store_true")


def run_rm(args: argparse.Namespace, ctx: CLIContext) -> int:
    return remove_each(ctx, [(name, f"/volumes/{_q(name)}") for name in args.volumes],
                       query={"force": args.force or None})


# ------------------------------------------------------------------------------------------ prune
def configure_prune(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard volume prune [OPTIONS]"
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("-f", "--force", action="store_true")


def run_prune(args: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.format.humanize import human_size

    filters = list(args.filter)
    warning = "WARNING! This will remove anonymous local volumes not used by at least one container."
    every = "WARNING! This will remove all local volumes not used by at least one container."
    if tuple(int(x) for x in ctx.client.version.split(".")) < (1, 42):
        warning = every  # before API 1.42 a prune removes named volumes too, and knows no `all` filter
    elif args.all:
        filters.append("all=true")
        warning = every
    if not args.force and not confirm(ctx, warning):
        return 0
    resp = ctx.client.post("/volumes/prune", {"filters": filters_query(filters)}) or {}
    deleted = resp.get("VolumesDeleted") or []
    if deleted:
        ctx.out.write("Deleted Volumes:\n" + "".join(f"{v}\n" for v in deleted) + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(resp.get('SpaceReclaimed') or 0)}\n")
    return 0
