"""The shim's bookkeeping: processes it serves, client connections, and runtime steps in a child.

Kept apart from the event loop in ``shim.py`` so each file stays small.
"""

from __future__ import annotations

import json
import os
import socket

from dockyard.runtime.errors import OCIRuntimeError
from dockyard.util.stdcopy import frame

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["frame"]  # docker's stdcopy framing, from util/stdcopy.py, for the shims


def set_nonblocking(fd: int) -> None:
    os.set_blocking(fd, False)


def close_fd(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


class Proc:
    """The init or one exec'd process: its stdio ends on our side and who listens to them."""

    def __init__(self, exec_id: str | None, tty: bool, stdin_once: bool) -> None:
        self.exec_id = exec_id
        self.tty = tty
        self.stdin_once = stdin_once
        self.pid = 0
        self.outputs: dict[int, str] = {}  # our read end -> "stdout" / "stderr"
        self.master: int | None = None  # the pty master (tty only)
        self.stdin_fd: int | None = None  # our write end of the process's stdin
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.clients: list[Client] = []
        self.status: int | None = None  # raw wait status once reaped
        self.exit_code: int | None = None
        self.waiters: list[Client] = []

    def close_stdin(self) -> None:
        if self.tty:
            return
        close_fd(self.stdin_fd)
        self.stdin_fd = None


class Client:
    """One connection: a command header first, then maybe a stream bound to a Proc."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.proc: Proc | None = None
        self.want: frozenset[str] = frozenset()
        self.stdin = False
        self.reading = True
        self.close_after_flush = False
        self.streaming = False

    def queue(self, data: bytes) -> None:
        self.outbuf += data

    def reply(self, obj: dict[str, Any], close: bool = False) -> None:
        self.outbuf += json.dumps(obj).encode() + b"\n"
        if close:
            self.close_after_flush = True
            self.reading = False


def in_helper(step: Callable[[], int]) -> int:
    """Run a runtime step (create+start, exec) in a short-lived forked child; returns the pid it made.

    The runtime's code allocates and touches a lot of objects, and may enter
    the container's namespaces; doing that in a child keeps the shim itself
    clean.  What the step starts is reparented to the shim, the subreaper.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(r)
        try:
            reply: dict[str, Any] = {"ok": True, "pid": step()}
        except OCIRuntimeError as exc:
            reply = {"ok": False, "error": exc.message, "kind": exc.kind}
        except BaseException as exc:  # noqa: BLE001 - whatever happened, the shim must hear of it
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "kind": "other"}
        try:
            os.write(w, json.dumps(reply).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    try:
        # read one line, not to EOF: a process the step forked may hold the pipe until it execs
        while not data.endswith(b"\n"):
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
    # not waited for here: the helper's exit (unmapping a forked interpreter) would delay the reply; the
    # shim's reaping loop (the monitor's, or the exec shim's) collects it like any other child
    try:
        result = json.loads(data)
    except ValueError:
        raise OCIRuntimeError("the runtime step died without a word", "other") from None
    if not result.get("ok"):
        raise OCIRuntimeError(str(result.get("error")), str(result.get("kind") or "other"))
    return int(result["pid"])


def stdio_pipes(proc: Proc, want_stdin: bool) -> tuple[int, int, int]:
    """Pipes for a non-tty process; returns the process's ends (the shim keeps the others)."""
    if want_stdin:
        r, w = os.pipe2(os.O_CLOEXEC)
        proc.stdin_fd = w
        set_nonblocking(w)
        child_in = r
    else:
        child_in = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    fds = [child_in]
    for stream in ("stdout", "stderr"):
        r, w = os.pipe2(os.O_CLOEXEC)
        set_nonblocking(r)
        proc.outputs[r] = stream
        fds.append(w)
    return fds[0], fds[1], fds[2]


def bind_relative(name: str, backlog: int, mode: int | None = None) -> socket.socket:
    """A listening unix socket bound by a name relative to the cwd (a state dir's path can be longer than a
    sun_path allows); a stale file of that name is replaced."""
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(name)
    if mode is not None:
        os.chmod(name, mode)
    sock.listen(backlog)
    return sock


def console_listener(name: str) -> socket.socket:
    """Where the runtime hands over a pty master."""
    return bind_relative(name, 1)


def receive_master(listener: socket.socket, name: str, proc: Proc) -> None:
    """Take the pty master the runtime sent (SCM_RIGHTS); it is the process's stdin and output."""
    listener.settimeout(10)
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        raise OCIRuntimeError("timed out waiting for the container's console", "other") from None
    finally:
        listener.close()
        try:
            os.unlink(name)
        except OSError:
            pass
    with conn:
        conn.settimeout(10)
        _, fds, _, _ = socket.recv_fds(conn, 1024, 4)
    if not fds:
        raise OCIRuntimeError("no console master received from the runtime", "other")
    for extra in fds[1:]:
        close_fd(extra)
    master = fds[0]
    os.set_inheritable(master, False)
    set_nonblocking(master)
    proc.master = master
    proc.outputs[master] = "stdout"
    proc.stdin_fd = master


def spawn_with_stdio(
    proc: Proc, want_stdin: bool, console_name: str,
    step: Callable[[tuple[int, int, int] | None, str | None], int],
) -> int:
    """Run a runtime step (create+start, exec) in a helper with the process's stdio made for it.

    A TTY process gets a pty whose master the runtime sends back over ``console_name``; otherwise pipes.
    ``step(stdio, console_socket)`` returns the pid it made.  Our ends land in ``proc``; on failure they
    are closed again.
    """
    console = console_listener(console_name) if proc.tty else None
    child_fds = None if proc.tty else stdio_pipes(proc, want_stdin)
    try:
        pid = in_helper(lambda: step(child_fds, console_name if console else None))
        if console is not None:
            receive_master(console, console_name, proc)
            console = None
    except BaseException:
        for fd in list(proc.outputs) + ([proc.stdin_fd] if proc.stdin_fd is not None else []):
            close_fd(fd)
        proc.outputs.clear()
        proc.master = proc.stdin_fd = None
        raise
    finally:
        if console is not None:
            console.close()
        for fd in child_fds or ():
            close_fd(fd)
    proc.pid = pid
    return pid
