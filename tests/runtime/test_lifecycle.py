"""Lifecycle commands on real containers: state, start, console socket, exec, pause, update, ps, list."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Any

import jsonschema
import pytest

from helpers import cgroupfs
from helpers.runtime import CGROUP_PARENT, Runtime

# the OCI schemas live in the specs folder beside the checkout (../shared/specs), or where DOCKYARD_SPECS says
SCHEMA_DIR = os.path.join(
    os.environ.get("DOCKYARD_SPECS")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "specs"),
    "oci-runtime-schema",
)


def _validate_state(state: dict[str, Any]) -> None:
    if not os.path.isdir(SCHEMA_DIR):  # a checkout without the specs beside it: the other checks still run
        return
    with open(os.path.join(SCHEMA_DIR, "state-schema.json")) as fh:
        schema = json.load(fh)
    with open(os.path.join(SCHEMA_DIR, "defs.json")) as fh:
        defs = json.load(fh)
    # the schema refers to defs.json by relative name; give it an in-memory resolver
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    registry = Registry().with_resource("defs.json", Resource.from_contents(defs, default_specification=DRAFT4))
    jsonschema.Draft4Validator(schema, registry=registry).validate(state)


def _state(rt: Runtime, cid: str) -> dict[str, Any]:
    res = rt.cmd("state", cid)
    assert res.returncode == 0, res.stderr
    state: dict[str, Any] = json.loads(res.stdout)
    if state["status"] != "paused":  # runc's extra status, which the OCI schema does not list
        _validate_state(state)
    return state


def test_create_start_state_kill_delete(make_bundle: Any, dockyard_rt: Runtime) -> None:
    bundle = make_bundle(["sleep", "30"], name="life")
    res = dockyard_rt.cmd("create", "--bundle", bundle, "--pid-file", bundle + "/pid", "life")
    assert res.returncode == 0, res.stderr
    state = _state(dockyard_rt, "life")
    assert state["status"] == "created"
    assert state["pid"] == int(open(bundle + "/pid").read())
    assert dockyard_rt.cmd("create", "--bundle", bundle, "life").returncode == 1
    assert dockyard_rt.cmd("start", "life").returncode == 0
    assert _state(dockyard_rt, "life")["status"] == "running"
    assert dockyard_rt.cmd("start", "life").returncode == 1
    listed = json.loads(dockyard_rt.cmd("list", "--format", "json").stdout)
    assert [s["id"] for s in listed] == ["life"]
    refused = dockyard_rt.cmd("delete", "life")
    assert refused.returncode == 1 and "not stopped" in refused.stderr
    assert dockyard_rt.cmd("kill", "life", "KILL").returncode == 0
    for _ in range(100):
        if _state(dockyard_rt, "life")["status"] == "stopped":
            break
        time.sleep(0.02)
    assert _state(dockyard_rt, "life")["status"] == "stopped"
    assert dockyard_rt.cmd("delete", "life").returncode == 0
    assert dockyard_rt.cmd("state", "life").returncode == 1


def test_pause_resume_update_ps(make_bundle: Any, dockyard_rt: Runtime) -> None:
    bundle = make_bundle(["sh", "-c", "sleep 30 & sleep 30"], name="ops")
    assert dockyard_rt.cmd("run", "--detach", "--bundle", bundle, "ops").returncode == 0
    pids = json.loads(dockyard_rt.cmd("ps", "--format", "json", "ops").stdout)
    assert len(pids) == 2
    assert dockyard_rt.cmd("pause", "ops").returncode == 0
    assert _state(dockyard_rt, "ops")["status"] == "paused"
    assert dockyard_rt.cmd("resume", "ops").returncode == 0
    assert _state(dockyard_rt, "ops")["status"] == "running"
    update = dockyard_rt.cmd("update", "--resources", "-", "ops", input=json.dumps({"pids": {"limit": 7}}))
    assert update.returncode == 0, update.stderr
    assert cgroupfs.read_limit(f"{CGROUP_PARENT}/ops", "pids") == "7"
    assert dockyard_rt.cmd("delete", "--force", "ops").returncode == 0


def test_console_socket_receives_master(make_bundle: Any, dockyard_rt: Runtime, tmp_path: Any) -> None:
    def tty(config: dict[str, Any]) -> None:
        config["process"]["terminal"] = True

    bundle = make_bundle(["sh", "-c", "tty; echo hello-from-pty"], tty, name="tty")
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(20)
    create = subprocess.Popen([*dockyard_rt.argv, "--root", dockyard_rt.root, "create", "--bundle", bundle,
                               "--console-socket", path, "tty"], stderr=subprocess.PIPE, text=True)
    dockyard_rt.ids.add("tty")
    conn, _ = listener.accept()
    _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    conn.close()
    listener.close()
    assert create.wait(20) == 0, create.stderr.read() if create.stderr else ""
    master = fds[0]
    assert dockyard_rt.cmd("start", "tty").returncode == 0
    out = b""
    deadline = time.time() + 10
    while b"hello-from-pty" not in out and time.time() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO once the slave side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert b"/dev/console" in out or b"/dev/pts/0" in out
    assert b"hello-from-pty" in out


def test_exec_joins_namespaces_and_cgroup(make_bundle: Any, dockyard_rt: Runtime) -> None:
    bundle = make_bundle(["sleep", "30"], name="ex")
    assert dockyard_rt.cmd("run", "--detach", "--bundle", bundle, "ex").returncode == 0
    init_pid = _state(dockyard_rt, "ex")["pid"]
    res = dockyard_rt.cmd("exec", "ex", "sh", "-c", "hostname; cat /proc/1/cmdline; echo; cat /proc/self/cgroup; exit 4")
    assert res.returncode == 4, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "box"
    assert lines[1].replace("\0", " ").strip() == "sleep 30"
    with open(f"/proc/{init_pid}/cgroup") as fh:
        init_memory = [x for x in fh.read().splitlines() if ":memory:" in x]
    assert [x for x in lines if ":memory:" in x] == init_memory
    missing = dockyard_rt.cmd("exec", "ex", "nosuch")
    assert missing.returncode == 255 and "executable file not found" in missing.stderr  # runc's exec failure
    as_user = dockyard_rt.cmd("exec", "-u", "1000:1000", "ex", "id", "-u")
    assert as_user.stdout.strip() == "1000"
    assert dockyard_rt.cmd("delete", "--force", "ex").returncode == 0


@pytest.mark.parametrize("name", ["features"])
def test_features_json(name: str, dockyard_rt: Runtime) -> None:
    res = dockyard_rt.cmd(name)
    assert res.returncode == 0
    data = json.loads(res.stdout)
    assert data["ociVersionMin"] and "pid" in data["linux"]["namespaces"]
    if os.path.isdir(SCHEMA_DIR):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        resources = []
        for name in ("defs.json", "features-linux.json", "defs-linux.json"):
            with open(os.path.join(SCHEMA_DIR, name)) as fh:
                resources.append((name, Resource.from_contents(json.load(fh), default_specification=DRAFT4)))
        with open(os.path.join(SCHEMA_DIR, "features-schema.json")) as fh:
            schema = json.load(fh)
        jsonschema.Draft4Validator(schema, registry=Registry().with_resources(resources)).validate(data)


def _runc_version() -> tuple[int, ...]:
    import re
    import subprocess

    out = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"runc version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def test_join_network_namespace_by_path_and_domainname(make_bundle: Any, dockyard_rt: Runtime) -> None:
    first = make_bundle(["sleep", "30"], name="netowner")
    assert dockyard_rt.cmd("run", "--detach", "--bundle", first, "netowner").returncode == 0
    owner_pid = _state(dockyard_rt, "netowner")["pid"]
    netns = f"/proc/{owner_pid}/ns/net"

    # runc sets domainname from 1.2 on; Debian 12's runc 1.1.5 (the reference here) leaves it unset
    domain = dockyard_rt.name != "runc" or _runc_version() >= (1, 2)

    def join(config: dict[str, Any]) -> None:
        config["linux"]["namespaces"] = [ns if ns["type"] != "network" else {"type": "network", "path": netns}
                                         for ns in config["linux"]["namespaces"]]
        config["domainname"] = "example.org"

    res = dockyard_rt.run("netjoiner", make_bundle(
        ["sh", "-c", "readlink /proc/self/ns/net; cat /proc/sys/kernel/domainname"], join, name="netjoiner"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [os.readlink(netns), "example.org" if domain else "(none)"]
    assert dockyard_rt.cmd("delete", "--force", "netowner").returncode == 0
