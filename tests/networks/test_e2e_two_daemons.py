"""Two daemons on one host never clobber each other: each restarts, crashes and stops while the other's
containers keep serving their published ports; a daemon on a data root, prefix or bridge another holds is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.daemon.config import default_bridge, default_prefix
from helpers.daemon import TestDaemon
from helpers.served import fetch, running, serve


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


@pytest.fixture
def pair(busybox_tar: str) -> Iterator[tuple[DefaultNamedDaemon, DefaultNamedDaemon]]:
    a, b = DefaultNamedDaemon(), DefaultNamedDaemon()
    with running(busybox_tar, a, b):
        yield a, b


def test_derived_names_differ_and_are_stable() -> None:
    assert default_prefix("/var/lib/dockyard") == "dy"
    assert default_bridge("/var/lib/dockyard") == "dockyard0"
    a, b = default_prefix("/srv/a"), default_prefix("/srv/b")
    assert a != b and a == default_prefix("/srv/a/") and len(a) <= 8
    assert default_bridge("/srv/a") != default_bridge("/srv/b")


def test_two_daemons_side_by_side(pair: tuple[DefaultNamedDaemon, DefaultNamedDaemon]) -> None:
    a, b = pair
    assert a.resource_prefix != b.resource_prefix and a.bridge != b.bridge
    pa, pb = serve(a, "sa"), serve(b, "sb")
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
    serve(a, "sa2")
    b.start()
    serve(b, "sb2")
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


def test_prefixes_sharing_a_stem(busybox_tar: str) -> None:
    """A daemon's reconcile and clean stop touch only the links its own records name: a second daemon whose
    prefix extends the first's (its veths start with the first's prefix and "v") keeps its links and ports."""
    a, b = TestDaemon(), TestDaemon()
    b.resource_prefix = a.resource_prefix + "v"
    with running(busybox_tar, b, a):  # b stops first: the host checks after a's stop match a's prefix as a stem
        pa, pb = serve(a, "sa"), serve(b, "sb")
        a.kill9()
        a.start()  # crash, then start-up reconcile
        assert fetch(pb) == b"hello\n", "the start-up reconcile deleted the other daemon's veth"
        assert a.docker("rm", "-f", "sa").returncode == 0
        assert fetch(pa, 1) == b""
        a.terminate()  # clean stop with no container left: the teardown of every link it made
        assert fetch(pb) == b"hello\n", "the clean stop deleted the other daemon's veth"
        a.start()
