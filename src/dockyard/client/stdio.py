"""Pumping a hijacked attach/exec connection to the terminal: raw mode, resize, detach keys, half-close.

Shared by every client that attaches (the CLI's run/attach/exec, compose's exec/run/attach).

One select loop (no threads): stdin → socket, socket → stdout/stderr (demultiplexed when the
container has no TTY). EOF on stdin half-closes the socket so the process sees EOF.
"""

from __future__ import annotations

import os
import select
import sys

from dockyard.client.api_client import HijackedSocket
from dockyard.util.stdcopy import STDERR, Demuxer

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str) -> bytes:
    """docker's --detach-keys: "ctrl-p,ctrl-q", "a", "ctrl-@" … → the byte sequence."""
    out = bytearray()
    for key in (spec or DEFAULT_DETACH_KEYS).split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            c = key[5]
            if c == "@":
                out.append(0)
            elif c in "[\\]^_":
                out.append(27 + "[\\]^_".index(c))
            else:
                out.append(ord(c.lower()) - ord("a") + 1)
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


class RawTerminal:
    """Puts the client's terminal in raw mode for a TTY session and restores it afterwards."""

    def __init__(self, fd: int, enabled: bool = True) -> None:
        self.fd = fd
        self.enabled = enabled
        self.saved: Any = None

    def __enter__(self) -> RawTerminal:
        if not self.enabled:
            return self
        import termios
        import tty

        try:
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        except termios.error:
            self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        sz = os.get_terminal_size(fd)
    except OSError:
        return None
    return sz.lines, sz.columns


def watch_resize(fd: int, resize: Callable[[int, int], None]) -> Callable[[], None]:
    """Call ``resize(h, w)`` now and on every SIGWINCH; returns the function that stops watching."""
    import signal  # only TTY sessions watch the size: start-up time for the rest


    def on_winch(*_: object) -> None:
        size = terminal_size(fd)
        if size:
            try:
                resize(*size)
            except Exception:  # noqa: BLE001 - a failed resize must not break the session
                pass

    on_winch()
    old = signal.signal(signal.SIGWINCH, on_winch)

    def stop() -> None:
        signal.signal(signal.SIGWINCH, old)

    return stop


def pump(conn: HijackedSocket, tty: bool, stdin: bool, detach_keys: bytes | None = None,
         stdin_fd: int | None = None, out_fd: int | None = None, err_fd: int | None = None) -> str:
    """Move bytes until the output ends. Returns "eof" or "detached" (detach keys typed)."""
    in_fd = (sys.stdin.fileno() if stdin_fd is None else stdin_fd) if stdin else -1
    ofd = sys.stdout.fileno() if out_fd is None else out_fd
    efd = sys.stderr.fileno() if err_fd is None else err_fd
    sock_fd = conn.fileno()
    demux = Demuxer()
    held = b""  # a prefix of the detach sequence typed so far
    reading_stdin = in_fd >= 0
    while True:
        rlist = [sock_fd] + ([in_fd] if reading_stdin else [])
        if conn.pending():
            ready = [sock_fd]
        else:
            ready, _, _ = select.select(rlist, [], [])
        if reading_stdin and in_fd in ready:
            try:
                data = os.read(in_fd, 65536)
            except OSError:
                data = b""
            if not data:
                reading_stdin = False
                if held:
                    conn.sendall(held)
                    held = b""
                conn.shutdown_write()
            else:
                if detach_keys:
                    data = held + data
                    held = b""
                    idx = data.find(detach_keys)
                    if idx >= 0:
                        # the daemon acts on the sequence too (it must not close a StdinOnce stdin)
                        conn.sendall(data[: idx + len(detach_keys)])
                        _drain(conn, 2.0)
                        return "detached"
                    # keep a trailing partial match back until the next byte decides
                    for n in range(min(len(detach_keys) - 1, len(data)), 0, -1):
                        if data.endswith(detach_keys[:n]):
                            held, data = data[-n:], data[:-n]
                            break
                if data:
                    try:
                        conn.sendall(data)
                    except OSError:
                        reading_stdin = False
        if sock_fd in ready:
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                return "eof"
            if tty:
                _write_all(ofd, data)
                continue
            for sid, payload in demux.feed(data):
                _write_all(efd if sid == STDERR else ofd, payload)


def _drain(conn: HijackedSocket, timeout: float) -> None:
    """After a detach: give the daemon a moment to close its side; discard what it still sends."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([conn.fileno()], [], [], left)
        if not ready:
            return
        try:
            if not conn.recv(65536):
                return
        except OSError:
            return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]
