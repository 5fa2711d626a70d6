"""Containers serving a published port, and daemons run side by side, for the network tests that need them
(two daemons on one host, the firewall healing, shared prefixes): one copy of the setup they all repeat."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from nethelp import free_port

from helpers.daemon import TestDaemon, finish_daemon

SERVER = "while true; do echo hello | nc -l -p 80; done"


def fetch(port: int, timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """What host:``port`` (IPv4 or IPv6) answers within ``timeout`` seconds (b"" if nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as c:
                data = c.recv(100)
                if data:
                    return data
        except OSError:
            pass
        if time.monotonic() > deadline:
            return b""
        time.sleep(0.1)


def serve(d: TestDaemon, name: str, *args: str) -> int:
    """Run a busybox container answering "hello" on a free published loopback port; the port."""
    port = free_port()
    p = d.docker("run", "-d", "--name", name, *args, "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", SERVER)
    assert p.returncode == 0, p.stderr
    assert fetch(port) == b"hello\n"
    return port


@contextmanager
def running(busybox_tar: str, *daemons: TestDaemon) -> Iterator[tuple[TestDaemon, ...]]:
    """Start ``daemons`` with busybox loaded; at the end stop each and fail if any left something behind."""
    try:
        for d in daemons:
            d.start()
            d.load_busybox(busybox_tar)
        yield daemons
    finally:
        errors = []
        for d in daemons:
            try:
                finish_daemon(d)
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, errors
