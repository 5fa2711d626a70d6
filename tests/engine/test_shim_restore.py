"""Shims outlive the daemon: after kill -9 a new daemon reattaches logs -f, exec and stop; exits are kept."""

from __future__ import annotations

import subprocess
import time

import pytest
from io_helpers import run_detached

from helpers.daemon import TestDaemon, wait_for

pytestmark = pytest.mark.dockyard_only("dockyard's always-on restore after a kill -9 of the daemon (dockerd keeps "
                                       "containers across it only with --live-restore)")


def _state(daemon: TestDaemon, cid: str) -> dict:
    status, body = daemon.api_json("GET", f"/containers/{cid}/json")
    assert status == 200, body
    return body["State"]


def test_reattach_after_kill9(daemon: TestDaemon, busybox_image: str) -> None:
    ticker = run_detached(daemon, "busybox", "sh", "-c",
                          "trap 'exit 0' TERM; i=0; while true; do echo tick-$i; i=$((i+1)); usleep 100000; done")
    short = run_detached(daemon, "busybox", "sh", "-c", "sleep 1.5; echo bye; exit 5")
    pid = _state(daemon, ticker)["Pid"]
    daemon.kill9()
    time.sleep(2.0)  # `short` exits while nobody listens
    daemon.start()
    st = _state(daemon, ticker)
    assert st["Running"] is True and st["Pid"] == pid
    wait_for(lambda: not _state(daemon, short)["Running"], timeout=10)
    st = _state(daemon, short)
    assert st["ExitCode"] == 5 and st["Status"] == "exited"
    assert daemon.docker("logs", short).stdout == "bye\n"
    r = daemon.docker("exec", ticker, "sh", "-c", "echo from-exec; exit 2")
    assert (r.returncode, r.stdout) == (2, "from-exec\n")
    follow = subprocess.Popen(["docker", "logs", "-f", "--tail", "1", ticker], env=daemon.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert daemon.docker("stop", ticker).returncode == 0
    out, err = follow.communicate(timeout=20)  # follow ends when the container stops
    lines = out.splitlines()
    assert len(lines) >= 3 and all(line.startswith("tick-") for line in lines), (out, err)
    numbers = [int(line.split("-")[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert _state(daemon, ticker)["ExitCode"] == 0
    assert daemon.docker("rm", ticker, short).returncode == 0
