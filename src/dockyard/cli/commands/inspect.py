"""`inspect` (any object type, like docker's), `container inspect`, `top` and `diff`."""

from __future__ import annotations

import argparse
import json

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.format.output import render_each
from dockyard.cli.format.table import align
from dockyard.client.api_client import APIClient, NotFound

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

# Object kinds in docker's search order for an untyped `inspect`, with their endpoints.
_KINDS = [
    ("container", "/containers/{}/json"),
    ("image", "/images/{}/json"),
    ("network", "/networks/{}"),
    ("volume", "/volumes/{}"),
]


def _fetch(client: APIClient, kind: str | None, name: str, size: bool) -> tuple[str, Any]:
    """The object's kind and inspect JSON; raises NotFound-style CLIError when no kind has it."""
    kinds = [k for k in _KINDS if kind is None or k[0] == kind]
    if not kinds:
        raise CLIError(f'"{kind}" is not a valid value for --type', 1)
    for k, path in kinds:
        query = {"size": True} if (k == "container" and size) else None
        try:
            return k, client.get(path.format(name), query)
        except NotFound as e:
            last = e
    if kind is None:
        raise CLIError(f"Error: No such object: {name}", 1)
    raise CLIError(f"Error response from daemon: {last.message}", 1)  # a typed lookup reports the daemon's word


def print_inspect(ctx: CLIContext, values: list[Any], fmt: str, kind: str | None = None) -> None:
    """Inspect output: the ``-f`` template over each object (typed like docker's structs), else indented JSON."""
    if fmt:
        from dockyard.cli.format.gostruct import typed_inspect

        if kind:
            ctx.out.write(render_each(fmt, [typed_inspect(kind, v) for v in values], raw=values, out=ctx.out))
        else:
            ctx.out.write(render_each(fmt, values, out=ctx.out, strict=True))
    else:
        # docker re-indents the daemon's bytes, which moby writes as UTF-8 without escapes
        ctx.out.write(json.dumps(values, indent=4, ensure_ascii=False) + "\n")


def inspect_each(ctx: CLIContext, kind: str, paths: list[str], fmt: str) -> int:
    """`image inspect` / `network inspect`: each object's JSON; a missing one is reported and makes exit 1."""
    found: list[Any] = []
    failed = False
    for path in paths:
        try:
            found.append(ctx.client.get(path))
        except NotFound as e:
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            failed = True
    print_inspect(ctx, found, fmt, kind)
    return 1 if failed else 0


def _inspect(ctx: CLIContext, names: list[str], kind: str | None, fmt: str, size: bool) -> int:
    values: list[tuple[str, Any]] = []
    errors: list[str] = []
    for name in names:
        try:
            values.append(_fetch(ctx.client, kind, name, size))
        except CLIError as e:
            errors.append(e.message)
    if values or not fmt:
        from dockyard.cli.format.gostruct import typed_inspect

        print_inspect(ctx, [typed_inspect(found_kind, value) for found_kind, value in values], fmt)
    for msg in errors:
        ctx.err.write(msg + "\n")
    return 1 if errors else 0


def configure_inspect(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard inspect [OPTIONS] NAME|ID [NAME|ID...]"
    p.add_argument("-f", "--format", default="")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("--type", default=None)
    p.add_argument("names", nargs="+", metavar="NAME|ID")


_DOCKER_TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")


def run_inspect(ns: argparse.Namespace, ctx: CLIContext) -> int:
    if ns.type is not None and ns.type not in _DOCKER_TYPES:  # refused before any lookup, as docker does
        shown = ", ".join(f'"{t}"' for t in _DOCKER_TYPES)
        raise CLIError(f'unknown type: "{ns.type}": must be one of {shown}', 1)
    return _inspect(ctx, ns.names, ns.type, ns.format, ns.size)


def configure_container_inspect(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard container inspect [OPTIONS] CONTAINER [CONTAINER...]"
    p.add_argument("-f", "--format", default="")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("names", nargs="+", metavar="CONTAINER")


def run_container_inspect(ns: argparse.Namespace, ctx: CLIContext) -> int:
    return _inspect(ctx, ns.names, "container", ns.format, ns.size)


def configure_top(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard top CONTAINER [ps OPTIONS]"
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)


def run_top(ns: argparse.Namespace, ctx: CLIContext) -> int:
    query = {"ps_args": " ".join(ns.ps_args)} if ns.ps_args else None
    result = ctx.client.get(f"/containers/{ns.container}/top", query) or {}
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(row) for row in result.get("Processes") or []]
    ctx.out.write(align(lines, minwidth=20))
    return 0


def configure_diff(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard diff CONTAINER"
    p.add_argument("container")


def run_diff(ns: argparse.Namespace, ctx: CLIContext) -> int:
    kinds = {0: "C", 1: "A", 2: "D"}
    for change in ctx.client.get(f"/containers/{ns.container}/changes") or []:
        ctx.out.write(f"{kinds.get(change.get('Kind'), '?')} {change.get('Path')}\n")
    return 0
