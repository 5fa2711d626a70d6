"""Daemon restarts keep running containers' networking (live restore) and clean up what died."""

from __future__ import annotations

import socket
import time

import pytest
from e2ehelp import SERVER, fetch, ok
from nethelp import free_port
from test_e2e_networks import run_ok

from helpers.daemon import TestDaemon, links_with_prefix


def _veths(d: TestDaemon) -> list[str]:
    return sorted(n for n in links_with_prefix(d.resource_prefix) if n.startswith(d.resource_prefix + "v"))


@pytest.mark.dockyard_only("dockyard's always-on restore across a daemon restart (dockerd keeps containers only with --live-restore) and its veth names")
@pytest.mark.parametrize("how", ["terminate", "kill9"])
def test_restart_keeps_ports_and_dns(d: TestDaemon, how: str) -> None:
    base = d.bip.split(".")
    net = f"keep{how}"
    ok(d, "network", "create", "--subnet", f"10.{base[1]}.{(int(base[2]) + 20 + len(how)) % 256}.0/24", net)
    port = free_port()
    ok(d, "run", "-d", "--name", f"svc{how}", "--network", net, "-p", f"127.0.0.1:{port}:80", "busybox",
       "sh", "-c", SERVER)
    assert fetch("127.0.0.1", port) == b"hello\n"
    veths = _veths(d)
    if how == "kill9":
        d.kill9()
        d.start()
    else:
        d.restart()
    assert ok(d, "inspect", "-f", "{{.State.Running}}", f"svc{how}").strip() == "true"
    assert _veths(d) == veths
    assert fetch("127.0.0.1", port) == b"hello\n"
    # the port is still held against host programs
    s = socket.socket()
    with pytest.raises(OSError):
        s.bind(("0.0.0.0", port))
    s.close()
    ip = ok(d, "inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}", f"svc{how}")
    out = run_ok(d, "--network", net, "busybox", "nslookup", f"svc{how}")
    assert ip.strip() in out
    ok(d, "rm", "-f", f"svc{how}")
    deadline = time.monotonic() + 5
    while _veths(d) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _veths(d) == []
    ok(d, "network", "rm", net)
