"""The shim protocol, written once: the files in a container's state dir, the commands and their framing.

Served by the native monitor (``native/monitor.c``, the container's init) on ``shim.sock`` and by each exec
shim (``exec.py``) on ``exec-<id12>.sock``; spoken by the daemon (``containers/shim_client.py``).  The C
monitor's copies of these names are checked against this module by ``tests/unit/test_shim_protocol.py``.

Files (relative to the state dir, which is the shim's cwd; sockets are bound by relative name because state
dirs can be longer than a ``sun_path``)::

    shim.sock          the monitor's command socket           shim.pid     the shim's pid (tmp + rename)
    exit.json          the init's exit, written by the monitor shim.log     the shim's and monitor's diagnostics
    exec-<id12>.sock   an exec shim's command socket          exec-<id12>.json   that exec's exit

Framing: a client connects, sends ONE command as a JSON object on one line, and reads one JSON line back.
After a successful ``attach`` the connection becomes the container's stream. Commands (keys beyond these
are ignored; the monitor's parser knows exactly ``COMMAND_KEYS``)::

    {"cmd": "attach", "stdin": b, "stdout": b, "stderr": b}
        -> {"ok": true, "log_size": n}, then the stream: docker's 8-byte multiplexed frames (stdcopy) unless
           the container has a TTY; a half-close from the client is stdin EOF. Monitor only: an exec's stream
           is the socket the daemon handed its shim when it was created.
    {"cmd": "wait"}
        -> monitor: {"exit_code": n, "oom_killed": b, "finished_at": rfc3339} once the init exited;
           exec shim: {"exit_code": n} once the process exited and its output was delivered.
    {"cmd": "resize", "h": n, "w": n}
        -> {"ok": true}; without a TTY {"ok": false, "error": ..., "kind": "state"}
    {"cmd": "status"}
        -> {"ok": true, "pid": n, "running": b} (the monitor adds "execs": {})
    {"cmd": "flush"}
        -> monitor only: {"ok": true, "log_size": n} once what the container wrote to its stdout/stderr
           before the command is in the log (a non-follow log read asks first, so it misses nothing in flight)

Errors are ``{"ok": false, "error": text}``, with ``"kind"`` (an ``OCIRuntimeError`` kind) when the daemon
should map it; an unknown command answers ``unknown command '<name>'``.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    import socket
    from typing import Any

SOCKET_NAME = "shim.sock"
PID_NAME = "shim.pid"
EXIT_NAME = "exit.json"
LOG_NAME = "shim.log"

ATTACH, WAIT, RESIZE, STATUS, FLUSH = "attach", "wait", "resize", "status", "flush"
COMMANDS = (ATTACH, WAIT, RESIZE, STATUS, FLUSH)
# the keys a command may carry, in the order of the monitor's parser (command.c's KEYS)
COMMAND_KEYS = ("cmd", "stdin", "stdout", "stderr", "h", "w", "exec")
# which server answers which command
SERVED_BY = {"monitor": COMMANDS, "exec": (WAIT, RESIZE, STATUS)}

MAX_LINE = 1 << 20


def exec_names(exec_id: str) -> tuple[str, str]:
    """(socket, exit file) of an exec, relative to the container's state dir."""
    return f"exec-{exec_id[:12]}.sock", f"exec-{exec_id[:12]}.json"


def connect(state_dir: str, name: str = SOCKET_NAME, timeout: float | None = 10.0) -> socket.socket:
    """A connection to a shim's socket by its relative name (through the state dir's fd: no sun_path limit)."""
    import socket as socket_mod

    dirfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock = socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(f"/proc/self/fd/{dirfd}/{name}")
        except OSError:
            sock.close()
            raise
        return sock
    finally:
        os.close(dirfd)


def encode(obj: dict[str, Any]) -> bytes:
    """One command or reply: a JSON object on one line."""
    return json.dumps(obj).encode() + b"\n"


def read_line(sock: socket.socket) -> bytes:
    """One line (without its newline), read byte by byte so nothing of a following stream is consumed."""
    out = bytearray()
    while True:
        b = sock.recv(1)
        if not b or b == b"\n":
            break
        out += b
        if len(out) > MAX_LINE:
            break
    return bytes(out)


def request(sock: socket.socket, cmd: dict[str, Any]) -> dict[str, Any] | None:
    """Send one command and read its reply; None when the server closed without one."""
    sock.sendall(encode(cmd))
    line = read_line(sock)
    if not line:
        return None
    reply: dict[str, Any] = json.loads(line)
    return reply
