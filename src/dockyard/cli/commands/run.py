"""`run` and `create`: build docker's create body, pull if missing, attach, wait, start, return the exit code."""

from __future__ import annotations

import os
import sys

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.commands.runflags import build_create_body, configure_create_flags
from dockyard.client.api_client import APIClient, APIError, NotFound, ServerError

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import argparse
    from typing import Any


def configure_create(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard create [OPTIONS] IMAGE [COMMAND] [ARG...]"
    configure_create_flags(p)


def configure_run(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard run [OPTIONS] IMAGE [COMMAND] [ARG...]"
    configure_create_flags(p)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--detach-keys", default="")
    p.add_argument("--sig-proxy", default="true", nargs="?", const="true")


def _split_ref(ref: str) -> tuple[str, str]:
    """"busybox" → ("busybox", "latest"); keeps registry ports and digests intact."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


def _pull(client: APIClient, image: str, err: Any) -> None:
    name, tag = _split_ref(image)
    for msg in client.stream_json("POST", "/images/create", {"fromImage": name, "tag": tag}):
        if isinstance(msg, dict) and msg.get("error"):
            raise ServerError(500, str(msg.get("error")))
        if isinstance(msg, dict) and msg.get("status") and not msg.get("progressDetail"):
            ident = msg.get("id")
            err.write((f"{ident}: " if ident else "") + f"{msg['status']}\n")


def create_container(ctx: CLIContext, ns: argparse.Namespace, detach: bool) -> str:
    """POST /containers/create (pulling first if the image is missing and --pull allows); returns the id."""
    body = build_create_body(ns, detach)
    if ns.tty and not detach and os.isatty(1):
        size = os.get_terminal_size(1)
        body["HostConfig"]["ConsoleSize"] = [size.lines, size.columns]
    query: dict[str, Any] = {"name": ns.name or None}
    if ns.platform:
        query["platform"] = ns.platform
    client = ctx.client
    if ns.pull == "always":
        _pull(client, ns.image, ctx.err)
    try:
        resp = client.post("/containers/create", query, body)
    except NotFound as e:
        if "No such image" not in e.message or ns.pull == "never":
            raise
        name, tag = _split_ref(ns.image)
        ctx.err.write(f"Unable to find image '{name}:{tag}' locally\n")
        _pull(client, ns.image, ctx.err)
        resp = client.post("/containers/create", query, body)
    for w in resp.get("Warnings") or []:
        ctx.err.write(f"WARNING: {w}\n")
    cid = str(resp["Id"])
    if ns.cidfile:
        with open(ns.cidfile, "x", encoding="utf-8") as f:
            f.write(cid)
    return cid


def run_create(ns: argparse.Namespace, ctx: CLIContext) -> int:
    cid = create_container(ctx, ns, detach=False)
    ctx.out.write(cid + "\n")
    return 0


def start_error_code(message: str) -> int:
    """docker's mapping of a failed start: 127 command not found, 126 cannot be invoked, else 125."""
    if ("executable file not found" in message or "no such file or directory" in message
            or "not found" in message and "exec" in message):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def run_run(ns: argparse.Namespace, ctx: CLIContext) -> int:
    if ns.tty and ns.interactive and not ns.detach and not os.isatty(0):
        raise CLIError("the input device is not a TTY", 1, bare=True)
    cid = create_container(ctx, ns, detach=ns.detach)
    client = ctx.client
    if ns.detach:
        _start(ctx, cid, ns)
        ctx.out.write(cid + "\n")
        return 0

    body_attach = build_attach_flags(ns)
    stdin, stdout, stderr = body_attach
    conn = None
    if stdin or stdout or stderr:
        conn = client.hijack("POST", f"/containers/{cid}/attach",
                             {"stream": True, "stdin": stdin, "stdout": stdout, "stderr": stderr,
                              "detachKeys": ns.detach_keys or None})
    waiter = client.begin("POST", f"/containers/{cid}/wait",
                          {"condition": "removed" if ns.rm else "next-exit"})
    try:
        _start(ctx, cid, ns)
    except BaseException:
        if conn:
            conn.close()
        waiter.close()
        raise
    return attach_and_wait(ctx, cid, conn, waiter, tty=ns.tty, stdin=stdin,
                           detach_keys=ns.detach_keys, sig_proxy=ns.sig_proxy != "false")


def build_attach_flags(ns: argparse.Namespace) -> tuple[bool, bool, bool]:
    streams = {s.lower() for s in ns.attach}
    if streams:
        return "stdin" in streams, "stdout" in streams, "stderr" in streams
    return bool(ns.interactive), True, True


def _start(ctx: CLIContext, cid: str, ns: argparse.Namespace) -> None:
    try:
        ctx.client.post(f"/containers/{cid}/start")
    except APIError as e:
        code = start_error_code(e.message)
        if ns.rm:
            try:
                ctx.client.delete(f"/containers/{cid}", {"force": True, "v": True})
            except APIError:
                pass
        raise CLIError(f"Error response from daemon: {e.message}\n\n"
                       f"Run 'dockyard run --help' for more information", code) from None


def attach_and_wait(ctx: CLIContext, cid: str, conn: Any, waiter: Any, tty: bool, stdin: bool,
                    detach_keys: str, sig_proxy: bool, reattach: bool = False) -> int:
    """Stream the session, then the container's exit code from the wait answer.

    Detaching ends `run` quietly with 0; `attach` (``reattach``) says "read escape sequence" and
    exits 1 like docker, and nudges the TTY size first so the shell redraws its prompt.
    """
    from dockyard.client.stdio import (
        RawTerminal,
        parse_detach_keys,
        pump,
        terminal_size,
        watch_resize,
    )

    client = ctx.client
    result = "eof"
    if conn is not None:
        keys = parse_detach_keys(detach_keys) if (tty and stdin) else None
        stop_watch = None
        restore_signals: list[tuple[int, Any]] = []
        in_tty = stdin and tty and os.isatty(0)
        if tty and os.isatty(1):
            def _resize(h: int, w: int) -> None:
                client.post(f"/containers/{cid}/resize", {"h": h, "w": w})
            if reattach:
                size = terminal_size(1)
                if size:
                    try:
                        _resize(size[0] + 1, size[1] + 1)
                    except APIError:
                        pass
            stop_watch = watch_resize(1, _resize)
        elif not tty and sig_proxy:
            restore_signals = _proxy_signals(client, cid)
        try:
            if in_tty:
                with RawTerminal(0):
                    result = pump(conn, tty, stdin, keys)
            else:
                result = pump(conn, tty, stdin, keys)
        finally:
            conn.close()
            if stop_watch:
                stop_watch()
            _restore(restore_signals)
    if result == "detached":
        waiter.close()
        if reattach:
            raise CLIError("read escape sequence", 1)
        return 0
    try:
        status = waiter.result() or {}
    except APIError as e:
        if "No such container" in e.message:
            return 0
        raise
    err = status.get("Error") or {}
    if err and err.get("Message"):
        sys.stderr.write(f"dockyard: Error response from daemon: {err['Message']}\n")
        return 125
    return int(status.get("StatusCode", 0))


# The signals --sig-proxy forwards, by the name docker's kill takes (the signal module would build its enums
# at start-up only to name these six: _signal has the numbers).
_PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def _proxy_signals(client: APIClient, cid: str) -> list[tuple[int, Any]]:
    """--sig-proxy: signals the CLI receives are sent to the container."""
    import _signal

    names = {getattr(_signal, name): name for name in _PROXIED}
    saved: list[tuple[int, Any]] = []

    def forward(signum: int, _frame: object) -> None:
        try:
            client.post(f"/containers/{cid}/kill", {"signal": names[signum]})
        except Exception:  # noqa: BLE001 - the container may already be gone
            pass

    for sig in names:
        saved.append((sig, _signal.signal(sig, forward)))
    return saved


def _restore(saved: list[tuple[int, Any]]) -> None:
    import _signal

    for sig, handler in saved:
        _signal.signal(sig, handler)
