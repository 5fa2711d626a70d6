"""What the end-to-end network tests share: the docker CLI call that must succeed, the loopback fetch, the
clean-up after each test (containers, user networks), and the busybox server they publish."""

from __future__ import annotations

from helpers import served
from helpers.daemon import TestDaemon
from helpers.served import SERVER

__all__ = ["SERVER", "clean", "fetch", "ok"]


def ok(d: TestDaemon, *args: str) -> str:
    """``docker ARGS`` against the daemon; its stdout, failing the test with the output when it fails."""
    p = d.docker(*args)
    assert p.returncode == 0, f"docker {' '.join(args)}: {p.stdout}{p.stderr}"
    return p.stdout


def fetch(host: str, port: int, timeout: float = 5.0) -> bytes:
    """The first bytes host:port (IPv4 or IPv6) answers within ``timeout``; fails the test if nothing does."""
    data = served.fetch(port, timeout, host)
    if not data:
        raise AssertionError(f"nothing answered on {host}:{port}")
    return data


def clean(d: TestDaemon) -> None:
    """Remove every container and user network: what a failing test leaves must not fail the next ones."""
    left = d.docker("ps", "-aq").stdout.split()
    if left:
        d.docker("rm", "-f", *left)
    nets = d.docker("network", "ls", "-q", "--filter", "type=custom").stdout.split()
    if nets:
        d.docker("network", "rm", *nets)
