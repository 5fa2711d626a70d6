"""Two daemons on one host never clobber each other: each restarts, crashes and stops while the other's
containers keep serving their published ports; a daemon on a data root, prefix or bridge another holds is refused.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from nethelp import free_port

from dockyard.daemon.config import default_bridge, default_prefix
from helpers.daemon import TestDaemon, finish_daemon

SERVER = "while true; do echo hello | nc -l -p 80; done"


class DefaultNamedDaemon(TestDaemon):
    """A test daemon that leaves the resource prefix and the bridge to the data root's defaults."""

    def __init__(self) -> None:
        super().__init__()
        self.resource_prefix = default_prefix(self.data_root)
        self.bridge = default_bridge(self.data_root)

    def argv(self) -> list[str]:
        out = super().argv()
        for flag in ("--bridge", "--resource-prefix"):
            i = out.index(flag)
            del out[i:i + 2]
        return out


def fetch(port: int, timeout: float = 5.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                data = c.recv(100)
                if data:
                    return data
        except OSError:
            pass
        if time.monotonic() > deadline:
            return b""
        time.sleep(0.1)


@pytest.fixture
def pair(busybox_tar: str) -> Iterator[tuple[DefaultNamedDaemon, DefaultNamedDaemon]]:
    a, b = DefaultNamedDaemon(), DefaultNamedDaemon()
    try:
        a.start()
        b.start()
        a.load_busybox(busybox_tar)
        b.load_busybox(busybox_tar)
        yield a, b
    finally:
        errors = []
        for d in (a, b):
            try:
                finish_daemon(d)
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, errors


def _serve(d: TestDaemon, name: str) -> int:
    port = free_port()
    p = d.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", SERVER)
    assert p.returncode == 0, p.stderr
    assert fetch(port) == b"hello\n"
    return port


def test_derived_names_differ_and_are_stable() -> None:
    assert default_prefix("/var/lib/dockyard") == "dy"
    assert default_bridge("/var/lib/dockyard") == "dockyard0"
    a, b = default_prefix("/srv/a"), default_prefix("/srv/b")
    assert a != b and a == default_prefix("/srv/a/") and len(a) <= 8
    assert default_bridge("/srv/a") != default_bridge("/srv/b")


def test_two_daemons_side_by_side(pair: tuple[DefaultNamedDaemon, DefaultNamedDaemon]) -> None:
    a, b = pair
    assert a.resource_prefix != b.resource_prefix and a.bridge != b.bridge
    pa, pb = _serve(a, "sa"), _serve(b, "sb")
    for this, other, port in ((a, b, pb), (b, a, pa)):
        this.restart()  # clean stop with live restore, then start-up reconcile
        assert fetch(port) == b"hello\n", f"{other.resource_prefix} lost its port when {this.resource_prefix} restarted"
        this.kill9()
        this.start()  # crash, then start-up reconcile
        assert fetch(port) == b"hello\n", f"{other.resource_prefix} lost its port when {this.resource_prefix} crashed"
    assert fetch(pa) == b"hello\n" and fetch(pb) == b"hello\n"
    # a full stop of one (its containers removed, its bridges and chains deleted) leaves the other serving
    # and able to publish new ports
    b.stop()
    assert fetch(pa) == b"hello\n"
    _serve(a, "sa2")
    b.start()
    _serve(b, "sb2")
    assert fetch(pa) == b"hello\n"


def test_second_daemon_on_same_root_or_names_refused(pair: tuple[DefaultNamedDaemon, DefaultNamedDaemon]) -> None:
    a, _b = pair
    twin = TestDaemon(tmp=a.tmp)
    twin.socket = twin.socket + ".twin"
    twin.host = f"unix://{twin.socket}"
    twin.pidfile = twin.pidfile + ".twin"
    twin.log_path = twin.log_path + ".twin"
    with pytest.raises(RuntimeError, match=f"data root {a.data_root} is in use by another dockyard daemon"):
        twin.start(timeout=10)
    same_prefix = TestDaemon()
    same_prefix.resource_prefix = a.resource_prefix
    try:
        with pytest.raises(RuntimeError, match=f"resource prefix '{a.resource_prefix}' is in use"):
            same_prefix.start(timeout=10)
    finally:
        same_prefix.remove_tmp()
    assert a.api("GET", "/_ping")[0] == 200
