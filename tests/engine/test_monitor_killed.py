"""kill -9 of a container's monitor: the daemon notices, records the container as exited with a reason, and
nothing of it is left (no process, mount, netns or cgroup)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon, cgroup_dirs, mounts_under, wait_for

pytestmark = pytest.mark.dockyard_only("dockyard's per-container monitor process (shim.pid in its state dir)")


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> Iterator[TestDaemon]:
    yield daemon


def test_monitor_killed(d: TestDaemon) -> None:
    p = d.docker("run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep", "600")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    state_dir = os.path.join(d.data_root, "containers", cid)
    with open(os.path.join(state_dir, "shim.pid")) as f:
        monitor = int(f.read())
    def is_monitor() -> bool:  # the shim execs the native monitor right after it reported the start
        return os.readlink(f"/proc/{monitor}/exe").endswith("dockyard-monitor")

    wait_for(is_monitor, timeout=10)
    init = json.loads(d.api("GET", f"/containers/{cid}/json")[2])["State"]["Pid"]
    os.kill(monitor, signal.SIGKILL)

    def stopped() -> dict[str, object] | None:
        st: dict[str, object] = json.loads(d.api("GET", f"/containers/{cid}/json")[2])["State"]
        return st if not st["Running"] else None

    st = wait_for(stopped, timeout=15)
    assert st["Status"] == "exited" and st["ExitCode"] == 255
    assert "monitor died" in str(st["Error"])
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{init}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{init}")
    assert mounts_under(os.path.join(d.data_root, "snapshots", cid)) == []
    assert mounts_under(os.path.join(d.data_root, "netns", cid)) == []
    assert [r for top in cgroup_dirs(d.cgroup_parent) for r, _d, _f in os.walk(top) if cid in r] == []
    ps = json.loads(d.api("GET", "/containers/json")[2])
    assert cid not in [c["Id"] for c in ps]
    assert d.docker("start", cid).returncode == 0  # it can run again
    assert d.docker("rm", "-f", cid).returncode == 0
