"""`logs`, `attach` and `exec`: the streaming container commands."""

from __future__ import annotations

import os
import sys
import time

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.fastargs import REMAINDER
from dockyard.client.api_client import APIError, iter_multiplexed

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import argparse
    from typing import Any


def docker_timestamp(value: str, now: float | None = None) -> str:
    """--since/--until: a Go duration ("10m") before now, an RFC 3339 time, or unix seconds → unix seconds."""
    from dockyard.cli.commands.runflags import parse_duration_ns
    from dockyard.cli.format.humanize import parse_time

    now = time.time() if now is None else now
    v = value.strip()
    try:
        float(v)
        return v
    except ValueError:
        pass
    try:
        return f"{now - parse_duration_ns(v) / 1e9:.9f}"
    except CLIError:
        pass
    if len(v) == 10 and v[4] == "-":
        v += "T00:00:00Z"
    ts = parse_time(v if ("Z" in v or "+" in v[10:] or v[10:].count("-")) else v + "Z")
    if not ts:
        raise CLIError(f'invalid value for "since": failed to parse value as time or duration: "{value}"', 1)
    return f"{ts:.9f}"


# -- logs -------------------------------------------------------------------------------------------
def configure_logs(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard logs [OPTIONS] CONTAINER"
    p.add_argument("--details", action="store_true")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--since", default="")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--until", default="")
    p.add_argument("container")


def run_logs(ns: argparse.Namespace, ctx: CLIContext) -> int:
    client = ctx.client
    info = client.get(f"/containers/{ns.container}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    query: dict[str, Any] = {
        "stdout": True, "stderr": True, "follow": ns.follow or None, "timestamps": ns.timestamps or None,
        "details": ns.details or None, "tail": ns.tail,
        "since": docker_timestamp(ns.since) if ns.since else None,
        "until": docker_timestamp(ns.until) if ns.until else None,
    }
    resp = client.request("GET", f"/containers/{info['Id']}/logs", query)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    ctx.out.flush()
    chunks = resp.iter_raw()
    if tty:
        for piece in chunks:
            out.write(piece)
            out.flush()
        return 0
    for stream, payload in iter_multiplexed(chunks):
        target = err if stream == 2 else out
        target.write(payload)
        target.flush()
    return 0


# -- attach -------------------------------------------------------------------------------------------
def configure_attach(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard attach [OPTIONS] CONTAINER"
    p.add_argument("--detach-keys", default="")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--sig-proxy", default="true", nargs="?", const="true")
    p.add_argument("container")


def run_attach(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.commands.run import attach_and_wait

    client = ctx.client
    info = client.get(f"/containers/{ns.container}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first", 1)
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first", 1)
    cfg = info.get("Config") or {}
    cid = info["Id"]
    tty = bool(cfg.get("Tty"))
    stdin = bool(cfg.get("OpenStdin")) and not ns.no_stdin
    conn = client.hijack("POST", f"/containers/{cid}/attach",
                         {"stream": True, "stdin": stdin, "stdout": True, "stderr": True,
                          "detachKeys": ns.detach_keys or None})
    waiter = client.begin("POST", f"/containers/{cid}/wait", {"condition": "not-running"})
    return attach_and_wait(ctx, cid, conn, waiter, tty=tty, stdin=stdin, detach_keys=ns.detach_keys,
                           sig_proxy=ns.sig_proxy != "false" and not tty, reattach=True)


# -- exec ---------------------------------------------------------------------------------------------
def configure_exec(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard exec [OPTIONS] CONTAINER COMMAND [ARG...]"
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--detach-keys", default="")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-u", "--user", default="")
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("container")
    p.add_argument("command", nargs=REMAINDER)


def exec_body(ns: argparse.Namespace, console: list[int] | None) -> dict[str, Any]:
    """The POST /containers/{id}/exec body as docker's CLI builds it."""
    from dockyard.cli.commands.runflags import _env_entries, _read_lines

    env: list[str] = []
    for path in ns.env_file:
        env += _env_entries(_read_lines(path))
    env += _env_entries(ns.env)
    body: dict[str, Any] = {"User": ns.user, "Privileged": ns.privileged, "Tty": ns.tty}
    if console:
        body["ConsoleSize"] = console
    body.update({
        "AttachStdin": ns.interactive and not ns.detach, "AttachStderr": not ns.detach,
        "AttachStdout": not ns.detach, "Detach": ns.detach, "DetachKeys": ns.detach_keys,
        "Env": env or None, "WorkingDir": ns.workdir, "Cmd": ns.command,
    })
    return body


def run_exec(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.client.stdio import (
        RawTerminal,
        parse_detach_keys,
        pump,
        terminal_size,
        watch_resize,
    )

    if not ns.command:
        raise CLIError("dockyard exec: 'dockyard exec' requires at least 2 arguments.\n"
                       "See 'dockyard exec --help'.", 1)
    if ns.tty and ns.interactive and not ns.detach and not os.isatty(0):
        raise CLIError("the input device is not a TTY", 1)
    client = ctx.client
    console = None
    if ns.tty and os.isatty(1):
        size = terminal_size(1)
        console = list(size) if size else None
    created = client.post(f"/containers/{ns.container}/exec", None, exec_body(ns, console))
    exec_id = created["Id"]
    start = {"Detach": ns.detach, "Tty": ns.tty, "ConsoleSize": console}
    if ns.detach:
        client.post(f"/exec/{exec_id}/start", None, start)
        return 0
    conn = client.hijack("POST", f"/exec/{exec_id}/start", None, start)
    stop_watch = None
    if ns.tty and os.isatty(1):
        def _resize(h: int, w: int) -> None:
            client.post(f"/exec/{exec_id}/resize", {"h": h, "w": w})
        stop_watch = watch_resize(1, _resize)
    keys = parse_detach_keys(ns.detach_keys) if (ns.tty and ns.interactive) else None
    try:
        if ns.interactive and ns.tty and os.isatty(0):
            with RawTerminal(0):
                result = pump(conn, ns.tty, ns.interactive, keys)
        else:
            result = pump(conn, ns.tty, ns.interactive, keys)
    finally:
        conn.close()
        if stop_watch:
            stop_watch()
    if result == "detached":
        return 0
    deadline = time.monotonic() + 2.0
    while True:
        try:
            info = client.get(f"/exec/{exec_id}/json")
        except APIError:
            return 0
        if not info.get("Running") or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    code = info.get("ExitCode")
    return int(code) if code is not None else 0
