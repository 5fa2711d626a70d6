"""The relay between a hijacked client connection and a container stream, and docker's detach keys.

Docker's stdcopy framing these streams carry is ``util/stdcopy.py``.
"""

from __future__ import annotations

import socket
import threading
from typing import Protocol

from dockyard.util.stdcopy import (
    HEADER,
    MULTIPLEXED,
    RAW,
    STDERR,
    STDIN,
    STDOUT,
    STREAMS,
    SYSTEMERR,
    Demuxer,
    demux_all,
    frame,
)

# the framing itself lives in util/stdcopy.py; re-exported for the daemon's users of this module
__all__ = ["DEFAULT_DETACH_KEYS", "HEADER", "MULTIPLEXED", "RAW", "STDERR", "STDIN", "STDOUT", "STREAMS", "SYSTEMERR",
           "Conn", "Demuxer",
           "EscapeFilter", "demux_all", "frame", "parse_detach_keys", "relay"]


# -- relaying a hijacked client connection to a container stream ---------------------------------------
class Conn(Protocol):
    def recv(self, n: int = 65536) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...


# docker's copyEscapable: with a terminal and no keys asked for, ctrl-p ctrl-q detach
DEFAULT_DETACH_KEYS = b"\x10\x11"


def parse_detach_keys(spec: str) -> bytes:
    """docker's detach key syntax: "ctrl-p,ctrl-q", "a", "ctrl-@" … → the byte sequence."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if key.lower().startswith("ctrl-") and len(key) == 6:
            ch = key[5].upper()
            if ch == "@":
                out.append(0)
            elif "A" <= ch <= "Z" or ch in "[\\]^_":
                out.append(ord(ch) & 0x1F)
            else:
                raise ValueError(f"Invalid escape keys ({spec}) provided")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise ValueError(f"Invalid escape keys ({spec}) provided")
    return bytes(out)


class EscapeFilter:
    """Passes stdin bytes through until the detach sequence is typed (partial matches are held back)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detached?)"""
        out = bytearray()
        for b in data:
            if b == self.keys[len(self.held)]:
                self.held.append(b)
                if len(self.held) == len(self.keys):
                    return bytes(out), True
                continue
            out += self.held
            self.held.clear()
            if b == self.keys[0]:
                self.held.append(b)
            else:
                out.append(b)
        return bytes(out), False


def relay(conn: Conn, stream: socket.socket, stdin: bool, detach_keys: bytes = b"",
          frame_raw: bool = False) -> bool:
    """Copy the container's output to ``conn`` and (if ``stdin``) ``conn``'s input to the container.

    ``frame_raw``: the stream is a terminal's raw output but the client reads docker's framing.
    Returns True when the client detached with its detach keys.  Client EOF
    half-closes the stream (stdin EOF); the output side ends when the
    container's stream ends.  The caller then closes ``conn``: that also wakes
    the stdin pump, which would otherwise keep the connection's reader busy.
    """
    detached = threading.Event()

    def pump_in() -> None:
        escape = EscapeFilter(detach_keys) if detach_keys else None
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    stream.shutdown(socket.SHUT_WR)
                    return
                if escape is not None:
                    data, hit = escape.feed(data)
                    if data:
                        stream.sendall(data)
                    if hit:
                        detached.set()
                        stream.shutdown(socket.SHUT_RDWR)
                        return
                else:
                    stream.sendall(data)
        except OSError:
            return

    if stdin:
        threading.Thread(target=pump_in, name="attach-stdin", daemon=True).start()
    try:
        while True:
            data = stream.recv(65536)
            if not data:
                break
            # a terminal's output (one stream) sent to a client that asked for docker's framing: stdout
            conn.sendall(frame("stdout", data) if frame_raw else data)
    except OSError:
        pass
    finally:
        stream.close()
    return detached.is_set()
