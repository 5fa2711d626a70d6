"""Commands that move image data in and out: import, export, save, load, commit."""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.commands.images import split_repo_tag

_TERMINAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="/:@")


def _copy_to(resp: Any, output: str | None) -> None:
    """Write a streamed tar to ``output`` (atomically) or to stdout, which must not be a terminal."""
    if output:
        tmp = f"{output}.tmp{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                for chunk in resp.iter_raw():
                    f.write(chunk)
            os.replace(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    out = sys.stdout.buffer
    for chunk in resp.iter_raw():
        out.write(chunk)
    out.flush()


def _print_messages(ctx: CLIContext, messages: Any) -> str:
    last = ""
    for msg in messages:
        if msg.get("error"):
            raise CLIError(msg["error"])
        if msg.get("progressDetail") and not ctx.out.isatty():
            continue  # progress bars only make sense on a terminal (docker drops them too)
        text = msg.get("stream") or msg.get("status") or ""
        if msg.get("id") and msg.get("status"):
            text = f"{msg['id']}: {msg['status']} {msg.get('progress', '')}".rstrip()
        if text:
            ctx.out.write(text if text.endswith("\n") else text + "\n")
            last = text.strip()
    return last


# ------------------------------------------------------------------------------------------ import
def configure_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="file|URL|-")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("--platform", default="")


def _naming_query(repository: str | None, changes: list[str]) -> dict[str, Any]:
    """repo/tag from REPOSITORY[:TAG] and the --change lines, as import and commit send them (None: left out)."""
    repo, tag = split_repo_tag(repository) if repository else (None, None)
    return {"repo": repo, "tag": tag, "changes": changes or None}


def run_import(args: argparse.Namespace, ctx: CLIContext) -> int:
    query = {"fromSrc": "-", "message": args.message or None, **_naming_query(args.repository, args.change)}
    if args.file == "-":
        src: IO[bytes] = sys.stdin.buffer
        close = False
    elif args.file.startswith(("http://", "https://")):
        query["fromSrc"] = args.file  # the daemon downloads it (docker import URL)
        _print_messages(ctx, ctx.client.stream_json("POST", "/images/create", query))
        return 0
    else:
        try:
            src = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise CLIError(f"open {args.file}: {e.strerror.lower() if e.strerror else e}") from None
        close = True
    try:
        _print_messages(ctx, ctx.client.stream_json("POST", "/images/create", query, body=src))
    finally:
        if close:
            src.close()
    return 0


# ------------------------------------------------------------------------------------------ export
def configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-o", "--output", default="")


def run_export(args: argparse.Namespace, ctx: CLIContext) -> int:
    if not args.output and sys.stdout.isatty():
        raise CLIError(_TERMINAL)
    _copy_to(ctx.client.stream_raw("GET", f"/containers/{_quote(args.container)}/export"), args.output)
    return 0


# ------------------------------------------------------------------------------------------ save
def configure_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", default="")
    p.add_argument("--platform", default="")


def run_save(args: argparse.Namespace, ctx: CLIContext) -> int:
    if not args.output and sys.stdout.isatty():
        raise CLIError(_TERMINAL)
    _copy_to(ctx.client.stream_raw("GET", "/images/get", {"names": args.images}), args.output)
    return 0


# ------------------------------------------------------------------------------------------ load
def configure_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", default="")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform", default="")


def run_load(args: argparse.Namespace, ctx: CLIContext) -> int:
    if args.input:
        try:
            src: IO[bytes] = open(args.input, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise CLIError(f"open {args.input}: {e.strerror.lower() if e.strerror else e}") from None
    else:
        if sys.stdin.isatty():
            raise CLIError("requested load from stdin, but stdin is empty")
        src = sys.stdin.buffer
    try:
        _print_messages(ctx, ctx.client.stream_json("POST", "/images/load", {"quiet": "1" if args.quiet else "0"},
                                                    body=src))
    finally:
        if args.input:
            src.close()
    return 0


# ------------------------------------------------------------------------------------------ commit
def configure_commit(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("-p", "--pause", default="true", nargs="?", const="true")


def run_commit(args: argparse.Namespace, ctx: CLIContext) -> int:
    query = {"container": args.container, "pause": "0" if str(args.pause).lower() in ("false", "0") else "1",
             "author": args.author or None, "comment": args.message or None,
             **_naming_query(args.repository, args.change)}
    result = ctx.client.post("/commit", query, body={})
    ctx.out.write(result["Id"] + "\n")
    return 0
