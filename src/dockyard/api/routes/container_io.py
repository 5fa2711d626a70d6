"""Container I/O routes: attach (hijacked), logs, resize, stats."""

from __future__ import annotations

import select
import time
from typing import Any

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import Empty, Raw, Stream
from dockyard.api.router import Router
from dockyard.containers import logs as logmod
from dockyard.containers.shim_client import register_attach
from dockyard.containers.stdcopy import DEFAULT_DETACH_KEYS, MULTIPLEXED, RAW, parse_detach_keys, relay
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.runtime.errors import OCIRuntimeError

UPGRADE_SETTLE = 0.02  # seconds between an attach's 101 head and its replayed log


def stream_content_type(req: Request, tty: bool) -> str:
    """Raw for TTY; multiplexed for the rest since API 1.42 (older clients expect raw-stream)."""
    if tty:
        return RAW
    try:
        major, minor = (int(x) for x in req.api_version.split(".")[:2])
    except ValueError:
        return MULTIPLEXED
    return MULTIPLEXED if (major, minor) >= (1, 42) else RAW


def log_driver_of(s: Services, c: Any) -> str:
    return str((c.host_config.get("LogConfig") or {}).get("Type") or s.config.log_driver)


def is_running(s: Services, cid: str) -> bool:
    try:
        return bool(s.containers.get(cid).state.Running)
    except NotFound:
        return False


def _detach_keys(req: Request) -> bytes:
    spec = req.q("detachKeys")
    if not spec:
        return b""
    try:
        return parse_detach_keys(spec)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None


def register(r: Router, s: Services) -> None:
    @r.get("/containers/{id}/logs")
    def logs(req: Request) -> Stream:
        c = s.containers.get(req.params["id"])
        driver = log_driver_of(s, c)
        logmod.check_readable(driver)
        stdout, stderr = req.q_bool("stdout"), req.q_bool("stderr")
        if not (stdout or stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        tail_text = (req.q("tail") or "all").strip()
        try:
            tail = -1 if tail_text in ("all", "") else int(tail_text)
        except ValueError:
            tail = -1  # docker treats an unparsable tail as "all"
        q = logmod.LogQuery(
            stdout=stdout,
            stderr=stderr,
            since_ns=logmod.parse_time(req.q("since")),
            until_ns=logmod.parse_time(req.q("until")),
            tail=tail,
            follow=req.q_bool("follow"),
            timestamps=req.q_bool("timestamps"),
        )
        tty = bool(c.config.get("Tty"))
        cid = c.id
        s.containers.settle_logs(c)  # everything written before this request is read, none of it in flight
        chunks = logmod.read_logs(s.containers.log_path(c), driver, q, tty, lambda: is_running(s, cid))
        return Stream(chunks, stream_content_type(req, tty))

    @r.post("/containers/{id}/attach")
    def attach(req: Request) -> None:
        c = s.containers.get(req.params["id"])
        stdin, stdout, stderr = req.q_bool("stdin"), req.q_bool("stdout"), req.q_bool("stderr")
        want_stream, want_logs = req.q_bool("stream"), req.q_bool("logs")
        tty = bool(c.config.get("Tty"))
        keys = _detach_keys(req) or (DEFAULT_DETACH_KEYS if tty else b"")
        if not (stdin or stdout or stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        shim_sock = None
        pending = None
        if want_stream:
            # a live attach replays the log itself, up to the exact byte where the stream starts
            shim_sock, pending = _open_attach(s, c.id, stdin, stdout, stderr, want_logs)
        conn = req.hijack(stream_content_type(req, tty))
        try:
            if want_logs and shim_sock is None:
                driver = log_driver_of(s, c)
                if driver in logmod.READABLE_DRIVERS:
                    q = logmod.LogQuery(stdout=stdout, stderr=stderr)
                    # Clients read the 101 through a buffered reader, then take the raw socket (docker-py):
                    # bytes that arrive with the head are lost in that buffer. Let the head go alone.
                    time.sleep(UPGRADE_SETTLE)
                    s.containers.settle_logs(c)
                    for chunk in logmod.read_logs(s.containers.log_path(c), driver, q, tty, lambda: False):
                        conn.sendall(chunk)
            if pending is not None:
                while shim_sock is None:
                    shim_sock = pending.wait(0.5)
                    if shim_sock is None and (pending.failed or _peer_gone(conn) or not _exists(s, c.id)):
                        pending.cancel()
                        break
            if shim_sock is not None:
                relay(conn, shim_sock, stdin, keys)
        except OSError:
            pass
        finally:
            if pending is not None and pending.sock is None:
                pending.cancel()
            conn.close()
        return None

    @r.post("/containers/{id}/resize")
    def resize(req: Request) -> Empty:
        c = s.containers.get(req.params["id"])
        h, w = req.q_int("h", 0) or 0, req.q_int("w", 0) or 0
        if not c.state.Running or c.shim is None:
            raise Conflict(f"Container {c.id} is not running")
        try:
            c.shim.resize(h, w)
        except OCIRuntimeError as exc:
            if exc.kind != "state":  # resizing a container without a TTY is a no-op, as in docker
                raise Conflict(exc.message) from None
        return Empty(200)

    @r.get("/containers/{id}/stats")
    def stats(req: Request) -> Stream | Raw:
        stream = req.q_bool("stream", True)
        one_shot = req.q_bool("one-shot")
        chunks = s.containers.stats(req.params["id"], stream, one_shot)
        if not stream:
            return Raw(b"".join(chunks), "application/json")
        return Stream(chunks, "application/json")


def _peer_gone(conn: Any) -> bool:
    """The client closed its end completely (a half-close for stdin EOF does not count)."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLHUP | select.POLLERR)
    return any(ev & (select.POLLHUP | select.POLLERR) for _, ev in poller.poll(0))


def _exists(s: Services, cid: str) -> bool:
    try:
        s.containers.get(cid)
        return True
    except NotFound:
        return False


def _open_attach(s: Services, cid: str, stdin: bool, stdout: bool, stderr: bool,
                 logs: bool) -> tuple[Any, Any]:
    """A live stream to a running container, or a registration that gets one when it starts."""
    c = s.containers.get(cid)
    if c.state.Running and c.shim is not None:
        try:
            return c.shim.attach(stdin, stdout, stderr, logs), None
        except OCIRuntimeError:
            pass  # it just exited: wait for the next start like docker does
    pending = register_attach(cid, stdin, stdout, stderr)
    c = s.containers.get(cid)
    if c.state.Running and c.shim is not None and pending.sock is None:  # it started in between
        pending.cancel()
        try:
            return c.shim.attach(stdin, stdout, stderr, logs), None
        except OCIRuntimeError:
            pending = register_attach(cid, stdin, stdout, stderr)
    return None, pending
