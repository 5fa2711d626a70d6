"""Image commands: images/image ls, rmi, tag, history, image inspect, image prune, image bootstrap."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.commands.inspect import inspect_each
from dockyard.cli.commands.lifecycle import confirm, filters_query
from dockyard.cli.format.humanize import human_size, time_ago
from dockyard.cli.format.output import Row, render_list
from dockyard.cli.format.table import truncate_id
from dockyard.client.api_client import APIError


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="/:@")


# ------------------------------------------------------------------------------------------ images
def configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", nargs="?")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--tree", action="store_true")


def run_ls(args: argparse.Namespace, ctx: CLIContext) -> int:
    filters = filters_query(args.filter) or {}
    if args.repository:
        filters.setdefault("reference", {})[args.repository] = True
    images = ctx.client.get("/images/json", {"all": True if args.all else None, "filters": filters or None})
    rows: list[Row] = []
    for img in images:
        tags = img.get("RepoTags") or []
        digests = img.get("RepoDigests") or []
        iid = img["Id"] if args.no_trunc else truncate_id(img["Id"])
        pairs: list[tuple[str, str, str]] = []
        for t in tags:
            repo, _, tag = t.rpartition(":")
            dg = next((d.split("@", 1)[1] for d in digests if d.split("@", 1)[0] == repo), "<none>")
            pairs.append((repo, tag, dg))
        if not pairs:
            if digests:
                pairs = [(d.split("@", 1)[0], "<none>", d.split("@", 1)[1]) for d in digests]
            else:
                pairs = [("<none>", "<none>", "<none>")]
        for repo, tag, dg in pairs:
            rows.append(Row({"ID": iid, "Repository": repo, "Tag": tag, "Digest": dg,
                             "CreatedSince": time_ago(img["Created"]),
                             "CreatedAt": datetime.fromtimestamp(img["Created"], UTC).strftime(
                                 "%Y-%m-%d %H:%M:%S +0000 UTC"),
                             "Size": human_size(img["Size"]), "VirtualSize": human_size(img["Size"], 4),
                             "SharedSize": "N/A", "UniqueSize": "N/A",
                             "Containers": "N/A" if img.get("Containers", -1) < 0 else str(img["Containers"])}))
    if args.quiet:  # one line per row, as docker prints it (an image with two tags appears twice)
        for r in rows:
            ctx.out.write(r["ID"] + "\n")
        return 0
    digest = "{{.Digest}}\t" if args.digests else ""
    default = "table {{.Repository}}\t{{.Tag}}\t" + digest + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    ctx.out.write(render_list(args.format, rows, _LS_HEADERS, default))
    return 0

_LS_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
               "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
               "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
               "Containers": "CONTAINERS"}


# ------------------------------------------------------------------------------------------ rmi
def configure_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")


def run_rm(args: argparse.Namespace, ctx: CLIContext) -> int:
    failed = False
    for name in args.images:
        query = {"force": "1" if args.force else None, "noprune": "1" if args.no_prune else None}
        try:
            records = ctx.client.delete(f"/images/{_quote(name)}", {k: v for k, v in query.items() if v})
        except APIError as e:
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            failed = True
            continue
        for rec in records or []:
            if "Untagged" in rec:
                ctx.out.write(f"Untagged: {rec['Untagged']}\n")
            if "Deleted" in rec:
                ctx.out.write(f"Deleted: {rec['Deleted']}\n")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------ tag
def configure_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def split_repo_tag(name: str) -> tuple[str, str]:
    """``host:5000/a/b:tag`` → (``host:5000/a/b``, ``tag``); the daemon validates the name."""
    if "@" in name:
        raise CLIError("refusing to create a tag with a digest reference")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = name.rpartition(":")
        return repo, tag
    return name, "latest"


def run_tag(args: argparse.Namespace, ctx: CLIContext) -> int:
    repo, tag = split_repo_tag(args.target)
    ctx.client.request("POST", f"/images/{_quote(args.source)}/tag", {"repo": repo, "tag": tag}).close()
    return 0


# ------------------------------------------------------------------------------------------ history
def configure_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("-H", "--human", default="true", nargs="?", const="true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default="")
    p.add_argument("--platform", default="")


def run_history(args: argparse.Namespace, ctx: CLIContext) -> int:
    human = str(args.human).lstrip("=").lower() not in ("false", "0")
    entries = ctx.client.get(f"/images/{_quote(args.image)}/history")
    rows = []
    for h in entries:
        hid = h["Id"] if h["Id"] == "<missing>" or args.no_trunc else truncate_id(h["Id"])
        created_by = (h.get("CreatedBy") or "").replace("\t", " ")
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        local = datetime.fromtimestamp(h["Created"]).astimezone()
        created_at = local.strftime("%Y-%m-%dT%H:%M:%S") + (
            "Z" if not local.utcoffset() else local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:])
        size = human_size(h["Size"]) if human else str(h["Size"])
        rows.append(Row({"ID": hid, "CreatedSince": time_ago(h["Created"]), "CreatedAt": created_at,
                         "CreatedBy": created_by, "Size": size, "Comment": h.get("Comment") or ""}))
    if args.quiet:
        for r in rows:
            ctx.out.write(r["ID"] + "\n")
        return 0
    headers = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
               "Size": "SIZE", "Comment": "COMMENT", "Tags": "TAGS"}
    when = "{{.CreatedSince}}" if human else "{{.CreatedAt}}"
    default = "table {{.ID}}\t" + when + "\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    ctx.out.write(render_list(args.format, rows, headers, default))
    return 0


# ------------------------------------------------------------------------------------------ inspect
def configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", default="")
    p.add_argument("--platform", default="")


def run_inspect(args: argparse.Namespace, ctx: CLIContext) -> int:
    return inspect_each(ctx, "image", [f"/images/{_quote(name)}/json" for name in args.images], args.format)


# ------------------------------------------------------------------------------------------ prune
def configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])


def run_prune(args: argparse.Namespace, ctx: CLIContext) -> int:
    filters = filters_query(args.filter) or {}
    if args.all:
        filters["dangling"] = {"false": True}
    if not args.force:
        warning = ("WARNING! This will remove all images without at least one container associated to them."
                   if args.all else "WARNING! This will remove all dangling images.")
        if not confirm(ctx, warning):
            return 0
    report = ctx.client.post("/images/prune", {"filters": filters or None})
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        ctx.out.write("Deleted Images:\n")
        for rec in deleted:
            if "Untagged" in rec:
                ctx.out.write(f"untagged: {rec['Untagged']}\n")
            if "Deleted" in rec:
                ctx.out.write(f"deleted: {rec['Deleted']}\n")
        ctx.out.write("\n")
    ctx.out.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0, 4)}\n")
    return 0


# ------------------------------------------------------------------------------------------ bootstrap
def configure_bootstrap(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="busybox|debian[:SUITE]")
    p.add_argument("-q", "--quiet", action="store_true")


def run_bootstrap(args: argparse.Namespace, ctx: CLIContext) -> int:
    started = time.monotonic()
    image_id = ""
    for msg in ctx.client.stream_json("POST", "/images/bootstrap", {"name": args.name}):
        if msg.get("error"):
            raise CLIError(msg["error"])
        if msg.get("id"):
            image_id = msg["id"]
        elif not args.quiet and msg.get("status"):
            ctx.out.write(msg["status"] + "\n")
    if args.quiet:
        ctx.out.write(image_id + "\n")
    else:
        ctx.out.write(f"{image_id} ({time.monotonic() - started:.1f}s)\n")
    return 0
