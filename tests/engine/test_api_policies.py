"""Restart policies, healthchecks (with --health-on-failure) and AutoRemove against a real daemon."""

from __future__ import annotations

import json
import os
import signal
import time
from urllib.parse import quote

import docker
import pytest

from helpers.daemon import TestDaemon, wait_for

MS = 1_000_000


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


def _inspect(daemon: TestDaemon, ref: str) -> dict:
    status, body = daemon.api_json("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return body


def test_on_failure_counts_restarts(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "exit 4"], detach=True,
                              restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    try:
        wait_for(lambda: (lambda i: i["RestartCount"] == 2 and i["State"]["Status"] == "exited")(
            _inspect(daemon, c.id)), 15)
        time.sleep(1.0)  # a third restart would have happened by now (back-off 100/200 ms)
        info = _inspect(daemon, c.id)
        assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 4 and not info["State"]["Restarting"]
    finally:
        c.remove(force=True)


def test_always_restarts_when_its_process_dies_not_after_kill(daemon: TestDaemon,
                                                              client: docker.DockerClient) -> None:
    """A process that dies (here SIGKILLed from the host) is restarted; `kill` through the API cancels the restart
    (docker's ExitOnNext: SIGKILL, the stop signal, or any signal when none is set), and so does `stop`."""
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, restart_policy={"Name": "always"})
    try:
        pid = _inspect(daemon, c.id)["State"]["Pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (lambda i: i["State"]["Running"] and i["State"]["Pid"] != pid)(_inspect(daemon, c.id)), 10)
        assert _inspect(daemon, c.id)["RestartCount"] == 1
        c.kill()
        time.sleep(1.0)  # a restart would have happened by now (back-off 100/200 ms)
        info = _inspect(daemon, c.id)
        assert (info["State"]["Status"], info["State"]["ExitCode"], info["RestartCount"]) == ("exited", 137, 1)
        c.start()
        c.stop(timeout=0)  # a manual stop is not restarted
        time.sleep(0.5)
        assert _inspect(daemon, c.id)["State"]["Status"] == "exited"
    finally:
        c.remove(force=True)


def test_unless_stopped_not_after_stop(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "sleep 0.2; exit 1"], detach=True,
                              restart_policy={"Name": "unless-stopped"})
    try:
        wait_for(lambda: _inspect(daemon, c.id)["RestartCount"] >= 1, 10)
        wait_for(lambda: _inspect(daemon, c.id)["State"]["Running"], 10)
        c.stop(timeout=0)
        time.sleep(1.0)
        info = _inspect(daemon, c.id)
        assert info["State"]["Status"] == "exited" and not info["State"]["Restarting"]
    finally:
        c.remove(force=True)


def _health_container(client: docker.DockerClient, test: list[str], **extra: object) -> docker.models.containers.Container:
    return client.containers.run("busybox", ["sleep", "300"], detach=True,
                                 healthcheck={"Test": test, "Interval": 200 * MS, "Timeout": 2000 * MS,
                                              "Retries": 2}, **extra)


def test_healthcheck_healthy_and_events(daemon: TestDaemon, client: docker.DockerClient) -> None:
    since = time.time() - 1
    c = _health_container(client, ["CMD-SHELL", "echo ok"])
    try:
        assert _inspect(daemon, c.id)["State"]["Health"]["Status"] == "starting"
        wait_for(lambda: _inspect(daemon, c.id)["State"]["Health"]["Status"] == "healthy", 15)
        health = _inspect(daemon, c.id)["State"]["Health"]
        assert health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0
        assert health["Log"][-1]["Output"] == "ok\n"
        rows = daemon.api_json("GET", "/containers/json?filters=" + quote(json.dumps({"health": ["healthy"]})))[1]
        assert [r["Id"] for r in rows] == [c.id] and rows[0]["Status"].endswith("(healthy)")
        status, _, body = daemon.api("GET", f"/events?since={since}&until={time.time()}")
        actions = [json.loads(x)["Action"] for x in body.splitlines()]
        assert "health_status: healthy" in actions
    finally:
        c.remove(force=True)


def test_healthcheck_unhealthy(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = _health_container(client, ["CMD", "false"])
    try:
        wait_for(lambda: _inspect(daemon, c.id)["State"]["Health"]["Status"] == "unhealthy", 15)
        health = _inspect(daemon, c.id)["State"]["Health"]
        assert health["FailingStreak"] >= 2 and len(health["Log"]) <= 5 and health["Log"][-1]["ExitCode"] == 1
        assert _inspect(daemon, c.id)["State"]["Running"]  # docker's default: nothing happens
        # each check is an exec with a shim of its own: none leaves a socket or an exit file behind
        state_dir = os.path.join(daemon.data_root, "containers", c.id)
        assert wait_for(lambda: not [n for n in os.listdir(state_dir) if n.startswith("exec-")], 5)
    finally:
        c.remove(force=True)


@pytest.mark.dockyard_only("--health-on-failure is podman's option, which dockyard adopts; docker has none")
def test_health_on_failure_restart(daemon: TestDaemon, client: docker.DockerClient) -> None:
    status, body = daemon.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["sleep", "300"],
        "Healthcheck": {"Test": ["CMD", "false"], "Interval": 200 * MS, "Retries": 1},
        "HostConfig": {"HealthOnFailure": "restart"}})
    assert status == 201, body
    cid = body["Id"]
    try:
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        pid = _inspect(daemon, cid)["State"]["Pid"]
        wait_for(lambda: (lambda i: i["State"]["Running"] and i["State"]["Pid"] != pid)(_inspect(daemon, cid)), 15)
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


@pytest.mark.dockyard_only("--health-on-failure is podman's option, which dockyard adopts; docker has none")
def test_health_on_failure_label_stop(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = _health_container(client, ["CMD", "false"], labels={"dockyard.health-on-failure": "kill"})
    try:
        wait_for(lambda: not _inspect(daemon, c.id)["State"]["Running"], 15)
        assert _inspect(daemon, c.id)["State"]["ExitCode"] == 137
    finally:
        c.remove(force=True)


@pytest.mark.dockyard_only("--health-on-failure is podman's option, which dockyard adopts; docker has none")
def test_bad_health_on_failure_value(daemon: TestDaemon, busybox_image: str) -> None:
    status, body = daemon.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"HealthOnFailure": "explode"}})
    assert status == 400 and "health-on-failure" in body["message"]
