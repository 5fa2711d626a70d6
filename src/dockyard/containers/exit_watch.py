"""One thread that waits for the exit of every running container, instead of one thread per container.

Each container's shim answers a ``wait`` request with one JSON line when the
container exits.  The daemon keeps that connection open for the container's
whole life; parking a thread on each would cost a stack and a kernel stack
per container.  Here every such socket sits in one epoll set; when a line (or
EOF) arrives, the socket is closed and the callback runs on a short-lived
thread of its own, because what follows an exit (runtime delete, restart
policy, auto-remove) may block.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable

MAX_LINE = 1 << 16  # an exit status is a few dozen bytes; more is a broken shim


class _Watch:
    __slots__ = ("sock", "buf", "on_line")

    def __init__(self, sock: socket.socket, on_line: Callable[[bytes], None]) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.on_line = on_line


class ExitWatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoll: select.epoll | None = None
        self._watches: dict[int, _Watch] = {}

    def watch(self, sock: socket.socket, on_line: Callable[[bytes], None]) -> None:
        """Call ``on_line(line)`` once ``sock`` delivers a line (b"" if it closes first)."""
        sock.setblocking(False)
        with self._lock:
            if self._epoll is None:
                self._epoll = select.epoll()
                threading.Thread(target=self._run, args=(self._epoll,), name="exit-watch", daemon=True).start()
            self._watches[sock.fileno()] = _Watch(sock, on_line)
            self._epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)

    def _run(self, ep: select.epoll) -> None:
        while True:
            try:
                events = ep.poll()
            except InterruptedError:
                continue
            for fd, _ in events:
                with self._lock:
                    w = self._watches.get(fd)
                if w is not None:
                    self._read(ep, fd, w)

    def _read(self, ep: select.epoll, fd: int, w: _Watch) -> None:
        try:
            data = w.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        w.buf += data
        nl = w.buf.find(b"\n")
        if data and nl < 0 and len(w.buf) < MAX_LINE:
            return
        line = bytes(w.buf[:nl]) if nl >= 0 else (b"" if len(w.buf) >= MAX_LINE else bytes(w.buf))
        with self._lock:
            self._watches.pop(fd, None)
            ep.unregister(fd)
        w.sock.close()
        threading.Thread(target=w.on_line, args=(line,), name="exit", daemon=True).start()


WATCHER = ExitWatcher()
