"""The commands outside this engine's scope (swarm, node, service, stack, secret, config, plugin): they ask the
daemon as the docker CLI does and answer as it answers against a daemon without the feature — swarm's
"This node is not a swarm manager…" error, or an empty plugin list."""

from __future__ import annotations

import argparse

from dockyard.cli.app import CLIContext
from dockyard.cli.format.output import Row, render_list

# group -> the endpoint its commands reach first (the daemon refuses it the same way for every subcommand)
ENDPOINTS = {"swarm": "/swarm", "node": "/nodes", "service": "/services", "stack": "/services",
             "secret": "/secrets", "config": "/configs"}
SUBCOMMANDS = {
    "swarm": ("ca", "init", "join", "join-token", "leave", "unlock", "unlock-key", "update"),
    "node": ("demote", "inspect", "ls", "list", "promote", "ps", "rm", "remove", "update"),
    "service": ("create", "inspect", "logs", "ls", "list", "ps", "rm", "remove", "rollback", "scale", "update"),
    "stack": ("config", "deploy", "up", "ls", "list", "ps", "rm", "remove", "down", "services"),
    "secret": ("create", "inspect", "ls", "list", "rm", "remove"),
    "config": ("create", "inspect", "ls", "list", "rm", "remove"),
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("rest", nargs=argparse.REMAINDER)


def _ask(ctx: CLIContext, group: str) -> int:
    ctx.client.get(ENDPOINTS[group])  # the daemon's 503 becomes docker's "Error response from daemon: …"
    return 0


def _runner(group: str):  # type: ignore[no-untyped-def]
    def run(ns: argparse.Namespace, ctx: CLIContext) -> int:
        return _ask(ctx, group)

    return run


def _inspect_runner(group: str):  # type: ignore[no-untyped-def]
    def run(ns: argparse.Namespace, ctx: CLIContext) -> int:
        ctx.out.write("[]\n")  # docker's inspect prints what it found (nothing), then the error
        ctx.out.flush()
        return _ask(ctx, group)

    return run


for _g in ENDPOINTS:
    globals()[f"configure_{_g}"] = configure
    globals()[f"run_{_g}"] = _runner(_g)
    globals()[f"configure_{_g}_inspect"] = configure
    globals()[f"run_{_g}_inspect"] = _inspect_runner(_g)


# ------------------------------------------------------------------------------------------ plugin
_PLUGIN_HEADERS = {"ID": "ID", "Name": "NAME", "Description": "DESCRIPTION", "Enabled": "ENABLED"}


def configure_plugin_ls(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard plugin ls [OPTIONS]"
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")


def run_plugin_ls(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.commands.lifecycle import filters_query

    plugins = ctx.client.get("/plugins", {"filters": filters_query(ns.filter)}) or []
    rows = [Row({"ID": str(p.get("Id", ""))[: None if ns.no_trunc else 12], "Name": p.get("Name", ""),
                 "Description": (p.get("Config") or {}).get("Description", ""),
                 "Enabled": str(bool(p.get("Enabled"))).lower()}) for p in plugins]
    if ns.quiet:
        ctx.out.write("".join(f"{r['ID']}\n" for r in rows))
        return 0
    ctx.out.write(render_list(ns.format, rows, _PLUGIN_HEADERS,
                              "table {{.ID}}\t{{.Name}}\t{{.Description}}\t{{.Enabled}}"))
    return 0


def configure_plugin_inspect(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard plugin inspect [OPTIONS] PLUGIN [PLUGIN...]"
    p.add_argument("plugins", nargs="+", metavar="PLUGIN")
    p.add_argument("-f", "--format", default="")


def run_plugin_inspect(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.commands.inspect import inspect_each

    return inspect_each(ctx, "plugin", [f"/plugins/{p}/json" for p in ns.plugins], ns.format)
