"""context create/ls/use/inspect/rm/show: the docker CLI's contexts, in the store it reads too
(~/.docker/contexts), so `docker context use x` and `dockyard context use x` pick the same daemon."""

from __future__ import annotations

import argparse
import json
import os

from dockyard.cli import contexts as store
from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.format.output import Row, render_list

_DEFAULT_SOCKET = "unix:///run/dockyard.sock"


def _dir(ctx: CLIContext) -> str:
    return store.config_dir(ctx.global_opts.get("config"))


def _default_host(ctx: CLIContext) -> str:
    return str(ctx.global_opts.get("host") or os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST")
               or _DEFAULT_SOCKET)


def _docker_opts(spec: str) -> tuple[str, bool]:
    host, skip = "", False
    for part in [p for p in spec.split(",") if p]:
        key, _, value = part.partition("=")
        if key == "host":
            host = value
        elif key == "skip-tls-verify":
            skip = value.lower() in ("1", "true")
        elif key in ("ca", "cert", "key"):
            raise CLIError(f"unable to create docker endpoint config: TLS material ({key}) is not supported here")
        else:
            raise CLIError(f"unable to create docker endpoint config: unrecognized config key: {key}")
    return host, skip


# ------------------------------------------------------------------------------------------ create
def configure_create(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard context create [OPTIONS] CONTEXT"
    p.add_argument("name", metavar="CONTEXT")
    p.add_argument("--description", default="")
    p.add_argument("--docker", default="")
    p.add_argument("--from", dest="from_", default="")


def run_create(args: argparse.Namespace, ctx: CLIContext) -> int:
    cfg = _dir(ctx)
    if args.from_ or not args.docker:
        source = args.from_ or store.current_name(cfg, ctx.global_opts.get("context"))
        host = _default_host(ctx) if source == store.DEFAULT else _load_host(cfg, source)
        skip = False
    else:
        host, skip = _docker_opts(args.docker)
    try:
        store.create(cfg, args.name, args.description, host, skip)
    except store.ContextError as e:
        raise CLIError(str(e)) from None
    ctx.out.write(f"{args.name}\n")
    ctx.err.write(f'Successfully created context "{args.name}"\n')
    return 0


def _load_host(cfg: str, name: str) -> str:
    try:
        return store.host_of(store.load(cfg, name))
    except store.ContextError as e:
        raise CLIError(str(e)) from None


# ------------------------------------------------------------------------------------------ ls
_LS_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR",
               "Current": "CURRENT"}


def configure_ls(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard context ls [OPTIONS]"
    p.add_argument("--format", default="")
    p.add_argument("-q", "--quiet", action="store_true")


def run_ls(args: argparse.Namespace, ctx: CLIContext) -> int:
    cfg = _dir(ctx)
    current = store.current_name(cfg, ctx.global_opts.get("context"))
    rows = [Row({"Name": store.DEFAULT, "Description": store.DEFAULT_DESCRIPTION,
                 "DockerEndpoint": _default_host(ctx), "Error": "", "Current": current == store.DEFAULT})]
    for name in store.names(cfg):
        try:
            meta = store.load(cfg, name)
            desc, host, err = str((meta.get("Metadata") or {}).get("Description") or ""), store.host_of(meta), ""
        except store.ContextError as e:
            desc, host, err = "", "", str(e)
        rows.append(Row({"Name": name, "Description": desc, "DockerEndpoint": host, "Error": err,
                         "Current": name == current}))
    if args.quiet:
        ctx.out.write("".join(f"{r['Name']}\n" for r in rows))
        return 0
    if not args.format or args.format == "table":
        for r in rows:  # the table marks the current one by name, as docker's does
            r["Name"] = r["Name"] + (" *" if r["Current"] else "")
    ctx.out.write(render_list(args.format, rows, _LS_HEADERS,
                              "table {{.Name}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"))
    return 0


# ------------------------------------------------------------------------------------------ use / show
def configure_use(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard context use CONTEXT"
    p.add_argument("name", metavar="CONTEXT")


def run_use(args: argparse.Namespace, ctx: CLIContext) -> int:
    cfg = _dir(ctx)
    if args.name != store.DEFAULT:
        _load_host(cfg, args.name)  # it must exist
    store.set_current(cfg, args.name)
    ctx.out.write(f"{args.name}\n")
    ctx.err.write(f'Current context is now "{args.name}"\n')
    if os.environ.get("DOCKER_HOST") and args.name != store.DEFAULT:
        ctx.err.write("Warning: DOCKER_HOST environment variable overrides the active context. To use "
                      f'"{args.name}", either set the global --context flag, or unset DOCKER_HOST environment '
                      "variable.\n")
    return 0


def configure_show(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard context show"


def run_show(args: argparse.Namespace, ctx: CLIContext) -> int:
    ctx.out.write(store.current_name(_dir(ctx), ctx.global_opts.get("context")) + "\n")
    return 0


# ------------------------------------------------------------------------------------------ inspect
def configure_inspect(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard context inspect [OPTIONS] [CONTEXT] [CONTEXT...]"
    p.add_argument("names", nargs="*", metavar="CONTEXT")
    p.add_argument("-f", "--format", default="")


def run_inspect(args: argparse.Namespace, ctx: CLIContext) -> int:
    cfg = _dir(ctx)
    out = []
    for name in args.names or [store.current_name(cfg, ctx.global_opts.get("context"))]:
        if name == store.DEFAULT:
            meta = {"Name": store.DEFAULT, "Metadata": {},
                    "Endpoints": {"docker": {"Host": _default_host(ctx), "SkipTLSVerify": False}}}
        else:
            try:
                meta = store.load(cfg, name)
            except store.ContextError as e:
                raise CLIError(str(e)) from None
        out.append({**meta, "TLSMaterial": {}, "Storage": store.storage(cfg, name)})
    if args.format:
        from dockyard.cli.format.output import render_each

        ctx.out.write(render_each(args.format, out))
    else:
        ctx.out.write(json.dumps(out, indent=4) + "\n")
    return 0


# ------------------------------------------------------------------------------------------ rm
def configure_rm(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard context rm CONTEXT [CONTEXT...]"
    p.add_argument("names", nargs="+", metavar="CONTEXT")
    p.add_argument("-f", "--force", action="store_true")


def run_rm(args: argparse.Namespace, ctx: CLIContext) -> int:
    cfg = _dir(ctx)
    current = store.current_name(cfg, None)
    errors = []
    for name in args.names:
        if name == store.DEFAULT:
            errors.append('default: context "default" cannot be removed')
            continue
        if name == current and not args.force:
            errors.append(f'{name}: context "{name}" is in use, set -f flag to force remove')
            continue
        try:
            store.remove(cfg, name)
        except store.ContextError as e:
            errors.append(f"{name}: {e}")
            continue
        if name == current:
            store.set_current(cfg, store.DEFAULT)
        ctx.out.write(f"{name}\n")
    if errors:
        raise CLIError("\n".join(errors))
    return 0
