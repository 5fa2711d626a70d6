"""Copying a hijacked exec/attach connection to this process's stdio (raw terminal for a TTY session).

One select loop: stdin → socket (EOF half-closes it), socket → stdout/stderr, demultiplexed when the
process has no TTY.
"""

from __future__ import annotations

import os
import select
import sys
from typing import Any

from dockyard.client.api_client import HijackedSocket


class RawTerminal:
    def __init__(self, fd: int, enabled: bool) -> None:
        self.fd = fd
        self.enabled = enabled
        self.saved: Any = None

    def __enter__(self) -> RawTerminal:
        if self.enabled:
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


def pump(conn: HijackedSocket, tty: bool, stdin: bool) -> None:
    in_fd = sys.stdin.fileno() if stdin else -1
    out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    sys.stdout.flush()
    sock_fd = conn.fileno()
    frame = b""
    reading = in_fd >= 0
    while True:
        if conn.pending():
            ready = [sock_fd]
        else:
            ready, _, _ = select.select([sock_fd] + ([in_fd] if reading else []), [], [])
        if reading and in_fd in ready:
            try:
                data = os.read(in_fd, 65536)
            except OSError:
                data = b""
            if not data:
                reading = False
                conn.shutdown_write()
            else:
                try:
                    conn.sendall(data)
                except OSError:
                    reading = False
        if sock_fd in ready:
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                return
            if tty:
                os.write(out_fd, data)
                continue
            frame += data
            while len(frame) >= 8:
                size = int.from_bytes(frame[4:8], "big")
                if len(frame) < 8 + size:
                    break
                target = err_fd if frame[0] == 2 else out_fd
                os.write(target, frame[8:8 + size])
                frame = frame[8 + size:]
