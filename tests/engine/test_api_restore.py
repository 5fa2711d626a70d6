"""Live restore: kill -9 of the daemon leaves containers running; a new daemon on the same root re-attaches."""

from __future__ import annotations

import os
import signal
import time

import pytest

from helpers.daemon import TestDaemon, wait_for


def _inspect(daemon: TestDaemon, ref: str) -> dict:
    status, body = daemon.api_json("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return body


def _run(daemon: TestDaemon, name: str, cmd: list[str], **host: object) -> str:
    status, body = daemon.api_json("POST", f"/containers/create?name={name}",
                                   {"Image": "busybox", "Cmd": cmd, "HostConfig": host})
    assert status == 201, body
    assert daemon.api("POST", f"/containers/{name}/start")[0] == 204
    return body["Id"]


@pytest.mark.dockyard_only("dockyard's always-on restore after a kill -9 of the daemon (dockerd keeps containers "
                           "across it only with --live-restore)")
def test_kill9_and_reattach(daemon: TestDaemon, busybox_image: str) -> None:
    keep = _run(daemon, "keep", ["sleep", "300"])
    quits = _run(daemon, "quits", ["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.1; done"])
    back = _run(daemon, "back", ["sh", "-c", "exit 3"], RestartPolicy={"Name": "no"})
    wait_for(lambda: not _inspect(daemon, back)["State"]["Running"], 10)
    keep_pid = _inspect(daemon, keep)["State"]["Pid"]
    quits_pid = _inspect(daemon, quits)["State"]["Pid"]
    daemon.kill9()
    assert os.path.exists(f"/proc/{keep_pid}")
    os.kill(quits_pid, signal.SIGTERM)  # exits with 7 while the daemon is down
    wait_for(lambda: not os.path.exists(f"/proc/{quits_pid}"), 10)
    time.sleep(0.3)
    daemon.start()
    info = _inspect(daemon, keep)
    assert info["State"]["Running"] and info["State"]["Pid"] == keep_pid
    r = daemon.docker("ps", "--format", "{{.Names}} {{.Status}}")
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("keep Up") for line in r.stdout.splitlines()), r.stdout
    wait_for(lambda: _inspect(daemon, quits)["State"]["Status"] == "exited", 10)
    assert _inspect(daemon, quits)["State"]["ExitCode"] == 7
    assert _inspect(daemon, back)["State"]["ExitCode"] == 3
    assert daemon.api("POST", "/containers/keep/stop?t=1")[0] == 204
    info = _inspect(daemon, keep)
    assert not info["State"]["Running"] and info["State"]["ExitCode"] == 137
    assert not os.path.exists(f"/proc/{keep_pid}")
    assert not os.path.ismount(os.path.join(daemon.data_root, "snapshots", keep, "merged"))


def test_always_started_at_boot(daemon: TestDaemon, busybox_image: str) -> None:
    cid = _run(daemon, "boot-always", ["sleep", "300"], RestartPolicy={"Name": "always"})
    stopped = _run(daemon, "boot-unless", ["sleep", "300"], RestartPolicy={"Name": "unless-stopped"})
    assert daemon.api("POST", "/containers/boot-unless/stop?t=0")[0] == 204
    assert daemon.api("POST", "/containers/boot-always/stop?t=0")[0] == 204
    daemon.restart()
    wait_for(lambda: _inspect(daemon, cid)["State"]["Running"], 10)
    time.sleep(0.3)
    assert not _inspect(daemon, stopped)["State"]["Running"]
