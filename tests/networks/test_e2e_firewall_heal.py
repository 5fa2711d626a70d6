"""The firewall heals: chains and rules removed under the daemon (a firewall reload, iptables -F, another tool)
are re-created on the next operation that needs them and by the periodic check, exactly as they were."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon, _remove_iptables, iptables_lines
from helpers.served import fetch, running, serve


def daemon_with(interval: int) -> TestDaemon:
    tmp = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    cfg = os.path.join(tmp, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({"firewall-check-interval": interval}, f)
    return TestDaemon(["--config-file", cfg], tmp=tmp)


@pytest.fixture
def lazy(busybox_tar: str) -> Iterator[TestDaemon]:
    with running(busybox_tar, daemon_with(0)) as (d,):  # no periodic check: only operations heal
        yield d


@pytest.fixture
def checked(busybox_tar: str) -> Iterator[TestDaemon]:
    with running(busybox_tar, daemon_with(1)) as (d,):
        yield d


def ours(d: TestDaemon) -> list[str]:
    return sorted(iptables_lines(f"DOCKYARD-{d.resource_prefix}"))


def test_next_publish_recreates_deleted_chains(lazy: TestDaemon) -> None:
    d = lazy
    assert d.docker("network", "create", "healnet").returncode == 0
    a = serve(d, "srva")
    b = serve(d, "srvb", "--network", "healnet")
    _remove_iptables(f"DOCKYARD-{d.resource_prefix}")  # chains, jumps and rules gone, as after a reload
    assert ours(d) == []
    assert fetch(a, 1) == b""
    c = serve(d, "srvc")  # needs the chains: they are re-created, with every recorded rule
    assert fetch(a) == b"hello\n" and fetch(b) == b"hello\n" and fetch(c) == b"hello\n"
    for name in ("srva", "srvb", "srvc"):
        assert d.docker("rm", "-f", name).returncode == 0
    assert d.docker("network", "rm", "healnet").returncode == 0
    bridge_tag = "n" + json.loads(d.api("GET", "/networks/bridge")[2])["Id"][:12]
    left = [ln for ln in ours(d) if "--comment" in ln]
    assert left and all(f"--comment {bridge_tag}" in ln for ln in left), left  # the default bridge's alone


def test_periodic_check_restores_flushed_rules(checked: TestDaemon) -> None:
    d = checked
    a = serve(d, "srva")
    before = ours(d)
    subprocess.run(["iptables", "-t", "nat", "-F", f"DOCKYARD-{d.resource_prefix}"], check=True)
    subprocess.run(["iptables", "-t", "filter", "-F", f"DOCKYARD-{d.resource_prefix}-FWD"], check=True)
    assert ours(d) != before
    assert fetch(a, 10) == b"hello\n"
    deadline = time.monotonic() + 5
    while ours(d) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ours(d) == before  # the same rules, none twice
    assert "re-creating our chains and rules" in d.log_tail(400)
