"""Container lifecycle through the Engine API: docker-py and raw HTTP against a real daemon."""

from __future__ import annotations

import json
import os
import time
from urllib.parse import quote

import docker
import pytest

from helpers import cgroupfs
from helpers.daemon import TestDaemon, wait_for


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


def _state(daemon: TestDaemon, ref: str) -> dict:
    status, body = daemon.api_json("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return body["State"]


def test_full_lifecycle(daemon: TestDaemon, client: docker.DockerClient) -> None:
    events_since = time.time() - 1
    c = client.containers.create("busybox", ["sleep", "300"], name="life", labels={"app": "t"})
    assert c.status == "created"
    c.start()
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Pid"] > 0
    assert c.attrs["Name"] == "/life" and c.attrs["Path"] == "sleep" and c.attrs["Args"] == ["300"]
    assert c.attrs["Config"]["Hostname"] == c.id[:12]
    # an unset policy: newer engines (and dockyard) report "no", dockerd 20.10 reports ""
    assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "" if daemon.reference else "no",
                                                      "MaximumRetryCount": 0}
    top = c.top()
    assert "PID" in top["Titles"] and any("sleep" in " ".join(p) for p in top["Processes"])
    c.pause()
    c.reload()
    assert c.status == "paused"
    status, summary = daemon.api_json("GET", "/containers/json")
    assert summary[0]["Status"].endswith("(Paused)")
    c.unpause()
    c.reload()
    assert c.status == "running"
    c.stop(timeout=1)  # busybox sleep ignores SIGTERM as PID 1: SIGKILL after the timeout
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    c.start()
    c.restart(timeout=0)
    c.reload()
    assert c.status == "running"
    c.kill(signal="SIGKILL")
    assert c.wait(timeout=10)["StatusCode"] == 137
    c.rename("life2")
    c.reload()
    assert c.name == "life2"
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("life2")
    until = time.time() + 0.2
    status, _, body = daemon.api("GET", f"/events?since={events_since}&until={until}&filters="
                                        + quote(json.dumps({"container": [c.id]})))
    actions = [json.loads(line)["Action"] for line in body.splitlines()]
    for want in ("create", "start", "pause", "unpause", "kill", "die", "stop", "restart", "rename", "destroy"):
        assert want in actions, (want, actions)
    die = [json.loads(x) for x in body.splitlines() if json.loads(x)["Action"] == "die"][0]
    assert die["Actor"]["Attributes"]["exitCode"] == "137" and die["Actor"]["Attributes"]["app"] == "t"


def test_exit_code_and_wait(client: docker.DockerClient) -> None:
    # it runs a moment: docker records StartedAt after the start returns, so an instant exit can finish "before"
    c = client.containers.run("busybox", ["sh", "-c", "sleep 0.2; exit 3"], detach=True)
    assert c.wait(timeout=10)["StatusCode"] == 3
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 3 and c.attrs["State"]["FinishedAt"] > c.attrs["State"]["StartedAt"]
    assert c.status == "exited"
    c.remove()


def test_update_resources_live(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, mem_limit="64m")
    try:
        c.update(mem_limit="96m", memswap_limit="192m", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 96 * 1024 * 1024
        assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
        assert int(cgroupfs.read_limit(f"{daemon.cgroup_parent}/{c.id}", "memory")) == 96 * 1024 * 1024
    finally:
        c.remove(force=True)


def test_list_filters(daemon: TestDaemon, client: docker.DockerClient) -> None:
    a = client.containers.run("busybox", ["sleep", "300"], detach=True, name="fa", labels={"tier": "web"})
    b = client.containers.create("busybox", ["true"], name="fb", labels={"tier": "db"})
    e = client.containers.run("busybox", ["sh", "-c", "exit 2"], detach=True, name="fe")
    e.wait(timeout=10)
    try:
        running = [c.name for c in client.containers.list()]
        assert "fa" in running and "fb" not in running and "fe" not in running
        assert {c.name for c in client.containers.list(all=True)} >= {"fa", "fb", "fe"}
        assert [c.name for c in client.containers.list(all=True, filters={"label": "tier=db"})] == ["fb"]
        assert [c.name for c in client.containers.list(filters={"status": "created"})] == ["fb"]
        assert [c.name for c in client.containers.list(all=True, filters={"exited": "2"})] == ["fe"]
        assert [c.name for c in client.containers.list(all=True, filters={"name": "^/fa$"})] == ["fa"]
        assert [c.name for c in client.containers.list(all=True, filters={"id": a.id[:10]})] == ["fa"]
        assert [c.name for c in client.containers.list(all=True, filters={"since": "fb"})] == ["fe"]
        assert "fe" not in [c.name for c in client.containers.list(all=True, filters={"before": "fb"})]
        assert {c.name for c in client.containers.list(all=True, filters={"ancestor": "busybox"})} >= {"fa", "fb"}
        assert [c.name for c in client.containers.list(all=True, limit=1)] == ["fe"]
        status, body = daemon.api_json("GET", "/containers/json?filters=" + quote(json.dumps({"bogus": ["x"]})))
        assert status == 400 and body["message"] == daemon.wording("invalid filter 'bogus'")
        status, rows = daemon.api_json("GET", "/containers/json?all=1")
        row = [r for r in rows if r["Names"] == ["/fe"]][0]
        assert row["Status"].startswith("Exited (2) ") and row["State"] == "exited" and row["Command"] == "sh -c 'exit 2'"
        row = [r for r in rows if r["Names"] == ["/fb"]][0]
        assert row["Status"] == "Created" and row["State"] == "created"
    finally:
        for c in (a, b, e):
            c.remove(force=True)


def test_prune(client: docker.DockerClient) -> None:
    keep = client.containers.run("busybox", ["sleep", "300"], detach=True)
    gone = client.containers.create("busybox", ["true"], labels={"prune": "yes"})
    try:
        res = client.containers.prune(filters={"label": "prune=yes"})
        assert res["ContainersDeleted"] == [gone.id]
        keep.reload()
    finally:
        keep.remove(force=True)


# -- error cases: status, message, and nothing left ---------------------------------------------
def _container_count(daemon: TestDaemon) -> int:
    return len(daemon.api_json("GET", "/containers/json?all=1")[1])


def _dirs(daemon: TestDaemon) -> set[str]:
    out = set()
    for sub in ("containers", "snapshots"):
        d = os.path.join(daemon.data_root, sub)
        out |= {f"{sub}/{x}" for x in os.listdir(d)} if os.path.isdir(d) else set()
    return out


def test_create_unknown_image(daemon: TestDaemon, busybox_image: str) -> None:
    before = (_container_count(daemon), _dirs(daemon))
    status, body = daemon.api_json("POST", "/containers/create", {"Image": "nosuchimage", "Cmd": ["true"]})
    assert status == 404 and body["message"] == "No such image: nosuchimage:latest"
    assert (_container_count(daemon), _dirs(daemon)) == before


def test_create_name_conflict(daemon: TestDaemon, busybox_image: str) -> None:
    status, first = daemon.api_json("POST", "/containers/create?name=dup", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 201
    before = (_container_count(daemon), _dirs(daemon))
    status, body = daemon.api_json("POST", "/containers/create?name=dup", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 409
    assert body["message"] == (f'Conflict. The container name "/dup" is already in use by container '
                               f'"{first["Id"]}". You have to remove (or rename) that container to be able to '
                               "reuse that name.")
    assert (_container_count(daemon), _dirs(daemon)) == before
    assert daemon.api("DELETE", "/containers/dup")[0] == 204


@pytest.mark.dockyard_only("docker 23+ answers a malformed body 400 'invalid JSON: …'; dockerd 20.10 answers 500")
def test_create_malformed_json_is_400(daemon: TestDaemon, busybox_image: str) -> None:
    before = (_container_count(daemon), _dirs(daemon))
    status, _, body = daemon.api("POST", "/containers/create", b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert status == 400 and b"invalid JSON" in body
    assert (_container_count(daemon), _dirs(daemon)) == before


def test_create_bad_json_and_params(daemon: TestDaemon, busybox_image: str) -> None:
    before = (_container_count(daemon), _dirs(daemon))
    status, body = daemon.api_json("POST", "/containers/create?name=bad/name", {"Image": "busybox"})
    assert status == 400 and "Invalid container name" in body["message"]
    status, body = daemon.api_json("POST", "/containers/create",
                                   {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 1024}})
    assert status == 400 and body["message"] == "Minimum memory limit allowed is 6MB"
    status, body = daemon.api_json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                   "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}})
    # newer moby words it "invalid restart policy: maximum retry count can only be used with 'on-failure'"
    assert status == 400 and ("maximum retry count cannot be used with restart policy 'always'" if daemon.reference
                              else "maximum retry count can only be used with 'on-failure'") in body["message"]
    assert (_container_count(daemon), _dirs(daemon)) == before


def test_start_running_is_304_and_rm_running_409(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True)
    try:
        status, _, body = daemon.api("POST", f"/containers/{c.id}/start")
        assert status == 304 and body == b""
        status, body = daemon.api_json("DELETE", f"/containers/{c.id}")
        assert status == 409
        assert body["message"] == (f"You cannot remove a running container {c.id}. Stop the container before "
                                   "attempting removal or force remove")
        assert _state(daemon, c.id)["Running"] is True
    finally:
        c.remove(force=True)
    assert not [d for d in _dirs(daemon) if c.id in d]


def test_kill_stopped_409(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["true"], name="ks")
    try:
        status, body = daemon.api_json("POST", "/containers/ks/kill")
        assert status == 409
        assert body["message"] == f"Cannot kill container: ks: Container {c.id} is not running"
    finally:
        c.remove()


def test_unknown_container_404(daemon: TestDaemon) -> None:
    for method, path in (("GET", "/containers/nope/json"), ("POST", "/containers/nope/start"),
                         ("POST", "/containers/nope/stop"), ("DELETE", "/containers/nope")):
        status, body = daemon.api_json(method, path)
        assert status == 404 and body["message"] == "No such container: nope"


def test_start_failure_leaves_nothing(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["/nonexistent"])
    try:
        status, body = daemon.api_json("POST", f"/containers/{c.id}/start")
        assert status == 400, body
        assert "no such file or directory" in body["message"].lower() or "not found" in body["message"]
        st = _state(daemon, c.id)
        assert st["Status"] == "created" and st["ExitCode"] == 127 and st["Error"]  # as docker shows it
        merged = os.path.join(daemon.data_root, "snapshots", c.id, "merged")
        assert not os.path.ismount(merged)
        assert not os.path.exists(os.path.join(daemon.data_root, "netns", c.id))
    finally:
        c.remove()


def test_wait_conditions(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["sh", "-c", "sleep 0.3; exit 5"])
    import threading

    result: dict = {}

    def waiter() -> None:
        result["next"] = daemon.api_json("POST", f"/containers/{c.id}/wait?condition=next-exit")

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    c.start()
    t.join(10)
    assert result["next"] == (200, {"StatusCode": 5, "Error": None})
    assert daemon.api_json("POST", f"/containers/{c.id}/wait")[1]["StatusCode"] == 5

    def removed() -> None:
        result["removed"] = daemon.api_json("POST", f"/containers/{c.id}/wait?condition=removed")

    t = threading.Thread(target=removed)
    t.start()
    time.sleep(0.2)
    c.remove()
    t.join(10)
    assert result["removed"][0] == 200


def test_auto_remove(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["true"], detach=True, auto_remove=True)
    wait_for(lambda: daemon.api("GET", f"/containers/{c.id}/json")[0] == 404, 10)


def test_rename_conflict(daemon: TestDaemon, client: docker.DockerClient) -> None:
    a = client.containers.create("busybox", ["true"], name="ren-a")
    b = client.containers.create("busybox", ["true"], name="ren-b")
    try:
        status, body = daemon.api_json("POST", "/containers/ren-a/rename?name=ren-b")
        assert status == 409
        assert body["message"] == ('Error when allocating new name: Conflict. The container name "/ren-b" is already '
                                   f'in use by container "{b.id}". You have to remove (or rename) that container to '
                                   "be able to reuse that name.")
        assert client.containers.get("ren-a").id == a.id
    finally:
        a.remove()
        b.remove()
