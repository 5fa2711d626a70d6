"""kill -9 of the daemon at each named step of start, stop, restart, create, remove and network connect/disconnect/create
(failpoints, util/failpoint.py): after the restart the records match the host, nothing runs that the API cannot
see, the interrupted operation can be retried, and removal leaves nothing."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.daemon import TestDaemon, cgroup_dirs, links_with_prefix, mounts_under

pytestmark = pytest.mark.dockyard_only("dockyard's failpoints (util/failpoint.py) and its state db records")

SERVER = "while true; do echo hello | nc -l -p 80; done"


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> Iterator[TestDaemon]:
    yield daemon


def crash_at(d: TestDaemon, monkeypatch: pytest.MonkeyPatch, failpoint: str, method: str, path: str,
             body: Any = None) -> None:
    """Restart ``d`` armed with ``failpoint``, send the request that reaches it, see the daemon die, restart."""
    d.terminate()
    monkeypatch.setenv("DOCKYARD_FAILPOINTS", failpoint)
    d.start()
    monkeypatch.delenv("DOCKYARD_FAILPOINTS")
    try:
        d.api(method, path, body, timeout=30)
    except OSError:
        pass  # the daemon died under the request
    assert d.proc is not None
    d.proc.wait(30)
    assert d.proc.returncode == -9, f"the daemon did not die at {failpoint}:\n{d.log_tail()}"
    assert f"failpoint {failpoint}" in d.log_tail(200)
    d.start()


def inspect(d: TestDaemon, ref: str) -> dict[str, Any]:
    status, _, body = d.api("GET", f"/containers/{ref}/json")
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def cgroup_procs(d: TestDaemon, cid: str) -> list[int]:
    pids: list[int] = []
    for top in cgroup_dirs(d.cgroup_parent):
        for root, _dirs, files in os.walk(top):
            if cid in root and "cgroup.procs" in files:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
    return pids


def container_leftovers(d: TestDaemon, cid: str) -> list[str]:
    left = [f"mount {m}" for m in mounts_under(os.path.join(d.data_root, "snapshots", cid))]
    left += [f"netns {m}" for m in mounts_under(os.path.join(d.data_root, "netns", cid))]
    left += [f"cgroup {root}" for top in cgroup_dirs(d.cgroup_parent) for root, _d, _f in os.walk(top) if cid in root]
    return left


def veths(d: TestDaemon) -> list[str]:
    return [n for n in links_with_prefix(d.resource_prefix) if n.startswith(d.resource_prefix + "v")]


def ifaces(d: TestDaemon, cid: str) -> list[str]:
    """The container's interfaces with an IPv4 address, loopback aside."""
    p = d.docker("exec", cid, "ip", "-o", "-4", "addr")
    assert p.returncode == 0, p.stderr
    return sorted(ln.split()[1] for ln in p.stdout.splitlines() if ln.split()[1] != "lo")


def create(d: TestDaemon, name: str, *args: str) -> str:
    p = d.docker("create", "--name", name, *args, "busybox", "sh", "-c", SERVER)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def gone(d: TestDaemon, cid: str) -> None:
    """rm -f of the container leaves no process, mount, netns or cgroup of it."""
    p = d.docker("rm", "-f", cid)
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 10
    while container_leftovers(d, cid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert container_leftovers(d, cid) == []
    assert cgroup_procs(d, cid) == []


@pytest.mark.parametrize("point", ["mounted", "networked", "spec-written", "shim-launched"])
def test_start_interrupted(d: TestDaemon, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    cid = create(d, f"st-{point}")
    crash_at(d, monkeypatch, f"container.start.{point}", "POST", f"/containers/{cid}/start")
    st = inspect(d, cid)["State"]
    procs = cgroup_procs(d, cid)
    if point == "shim-launched":  # the shim finished the start on its own: adopted, recorded as running
        assert st["Running"] is True and st["Pid"] > 0 and st["Pid"] in procs, st
        ps = json.loads(d.api("GET", "/containers/json")[2])
        assert cid in [c["Id"] for c in ps]
    else:  # no shim was launched: nothing runs and nothing of the half start is left
        assert st["Status"] == "created" and st["Pid"] == 0 and procs == [], (st, procs)
        assert container_leftovers(d, cid) == []
        p = d.docker("start", cid)  # the interrupted operation can be retried
        assert p.returncode == 0, p.stderr
        assert inspect(d, cid)["State"]["Running"] is True
    gone(d, cid)


TERM_EXITS = "trap 'exit 3' TERM; while true; do sleep 0.1; done"


@pytest.mark.parametrize("exits", [True, False], ids=["term-exits", "term-ignored"])
def test_stop_interrupted(d: TestDaemon, monkeypatch: pytest.MonkeyPatch, exits: bool) -> None:
    """The daemon dies right after the stop signal: restore records the exit the container made while no
    daemon ran, or adopts the container that ignored the signal; either way the stop can be retried."""
    p = d.docker("run", "-d", "--name", f"sp-{exits}", "busybox", "sh", "-c", TERM_EXITS if exits else SERVER)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    pid = inspect(d, cid)["State"]["Pid"]
    crash_at(d, monkeypatch, "container.stop.signalled", "POST", f"/containers/{cid}/stop?t=1")
    if exits:
        deadline = time.monotonic() + 10
        while inspect(d, cid)["State"]["Running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        st = inspect(d, cid)["State"]
        assert (st["Status"], st["ExitCode"], st["Pid"]) == ("exited", 3, 0), st
        assert cgroup_procs(d, cid) == [] and container_leftovers(d, cid) == []
        assert d.api("POST", f"/containers/{cid}/stop")[0] == 304  # retried: already stopped
    else:
        st = inspect(d, cid)["State"]
        assert st["Running"] is True and st["Pid"] == pid and pid in cgroup_procs(d, cid), st
        p = d.docker("stop", "-t", "1", cid)  # retried to success
        assert p.returncode == 0, p.stderr
        assert inspect(d, cid)["State"]["Status"] == "exited"
        assert cgroup_procs(d, cid) == [] and container_leftovers(d, cid) == []
    gone(d, cid)


def test_restart_interrupted(d: TestDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon dies between the stop and the start of a restart: the container is recorded stopped with
    nothing of it left, and the retried restart runs it."""
    p = d.docker("run", "-d", "--name", "rs1", "busybox", "sh", "-c", TERM_EXITS)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    crash_at(d, monkeypatch, "container.restart.stopped", "POST", f"/containers/{cid}/restart?t=5")
    st = inspect(d, cid)["State"]
    assert (st["Status"], st["Pid"]) == ("exited", 0), st
    assert cgroup_procs(d, cid) == [] and container_leftovers(d, cid) == []
    p = d.docker("restart", "-t", "1", cid)
    assert p.returncode == 0, p.stderr
    st = inspect(d, cid)["State"]
    assert st["Running"] is True and st["Pid"] in cgroup_procs(d, cid), st
    gone(d, cid)


def test_create_interrupted_is_completed(d: TestDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(d, monkeypatch, "container.create.recorded", "POST", "/containers/create?name=cr1",
             {"Image": "busybox", "Cmd": ["sleep", "600"]})
    cid = inspect(d, "cr1")["Id"]  # the record was written: the create is finished at restart
    p = d.docker("start", cid)
    assert p.returncode == 0, p.stderr
    gone(d, cid)


def test_remove_interrupted_is_finished(d: TestDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = create(d, "rm1")
    assert d.docker("start", cid).returncode == 0
    crash_at(d, monkeypatch, "container.remove.network-released", "DELETE", f"/containers/{cid}?force=1")
    assert d.api("GET", f"/containers/{cid}/json")[0] == 404  # the removal was finished at restart
    assert container_leftovers(d, cid) == [] and cgroup_procs(d, cid) == []
    assert not os.path.exists(os.path.join(d.data_root, "snapshots", cid))
    assert create(d, "rm1")  # the name is free again
    d.docker("rm", "-f", "rm1")


def _agree(d: TestDaemon, net: str, cid: str) -> bool:
    """Both records say the same: connected (in the container's inspect and the network's) or not."""
    in_container = net in inspect(d, cid)["NetworkSettings"]["Networks"]
    status, _, body = d.api("GET", f"/networks/{net}")
    assert status == 200
    in_network = cid in json.loads(body)["Containers"]
    assert in_container == in_network, (in_container, in_network)
    return in_container


@pytest.mark.parametrize("point", ["network.endpoint.recorded", "network.connect.attached"])
def test_connect_interrupted(d: TestDaemon, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    net = "cn-" + point.rsplit(".", 1)[1]
    assert d.docker("network", "create", net).returncode == 0
    cid = create(d, net)
    assert d.docker("start", cid).returncode == 0
    crash_at(d, monkeypatch, point, "POST", f"/networks/{net}/connect", {"Container": cid})
    if not _agree(d, net, cid):
        p = d.docker("network", "connect", net, cid)  # rolled back: the connect can be retried
        assert p.returncode == 0, p.stderr
    assert _agree(d, net, cid)
    assert ifaces(d, cid) == ["eth0", "eth1"]
    p = d.docker("network", "disconnect", net, cid)
    assert p.returncode == 0, p.stderr
    assert not _agree(d, net, cid)
    gone(d, cid)
    assert d.docker("network", "rm", net).returncode == 0


@pytest.mark.parametrize("point", ["forgotten", "unlinked"])
def test_disconnect_interrupted(d: TestDaemon, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    net = f"dc-{point}"
    assert d.docker("network", "create", net).returncode == 0
    cid = create(d, f"dc-{point}", "--network", net)
    assert d.docker("start", cid).returncode == 0
    assert d.docker("network", "connect", "bridge", cid).returncode == 0
    crash_at(d, monkeypatch, f"network.disconnect.{point}", "POST", f"/networks/{net}/disconnect",
             {"Container": cid})
    if _agree(d, net, cid):
        p = d.docker("network", "disconnect", net, cid)  # rolled back: the disconnect can be retried
        assert p.returncode == 0, p.stderr
    assert not _agree(d, net, cid)
    assert ifaces(d, cid) == ["eth1"]  # only the bridge network's interface (connected second)
    gone(d, cid)
    assert d.docker("network", "rm", net).returncode == 0


def test_network_create_interrupted(d: TestDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(d, monkeypatch, "network.create.recorded", "POST", "/networks/create", {"Name": "nc1"})
    status, _, body = d.api("GET", "/networks/nc1")
    if status == 200:  # recorded: brought up at restart, usable and removable
        cid = create(d, "nc1c", "--network", "nc1")
        assert d.docker("start", cid).returncode == 0
        gone(d, cid)
        assert d.docker("network", "rm", "nc1").returncode == 0
    assert d.docker("network", "create", "nc1").returncode == 0  # the create can be retried
    assert d.docker("network", "rm", "nc1").returncode == 0
    assert veths(d) == []


def test_network_create_racing_prune_leaks_no_rule(d: TestDaemon) -> None:
    import threading

    stop = threading.Event()

    def prune() -> None:
        while not stop.is_set():
            d.api("POST", "/networks/prune")

    t = threading.Thread(target=prune)
    t.start()
    try:
        for i in range(30):
            d.api("POST", "/networks/create", {"Name": f"race{i}"})
    finally:
        stop.set()
        t.join()
    d.api("POST", "/networks/prune")
    nets = {n["Id"][:12] for n in json.loads(d.api("GET", "/networks")[2])}
    rules = subprocess_rules(d)
    orphans = [r for r in rules if "--comment n" in r and r.split("--comment n", 1)[1][:12] not in nets]
    assert orphans == []


def subprocess_rules(d: TestDaemon) -> list[str]:
    import subprocess

    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if f"DOCKYARD-{d.resource_prefix}" in ln and ln.startswith("-A ")]


def exec_files(d: TestDaemon, cid: str) -> list[str]:
    state = os.path.join(d.data_root, "containers", cid)
    return sorted(n for n in os.listdir(state) if n.startswith("exec-"))


def _exec_create(d: TestDaemon, cid: str, cmd: list[str]) -> str:
    status, _, body = d.api("POST", f"/containers/{cid}/exec", {"Cmd": cmd})
    assert status == 201, body
    exec_id: str = json.loads(body)["Id"]
    return exec_id


def _serving(d: TestDaemon, cid: str) -> set[int]:
    """The container's own processes once its SERVER loop listens (its shell forks ``nc`` after the start
    returns: a set taken before that would count the container's own ``nc`` as the exec's)."""
    deadline = time.monotonic() + 10
    while True:
        procs = set(cgroup_procs(d, cid))
        if any("nc -l -p 80" in _describe(pid) for pid in procs) or time.monotonic() > deadline:
            return procs
        time.sleep(0.05)


def _describe(pid: int) -> str:
    """A process's command line, state and parent, for a failure's message."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/status") as g:
            fields = dict(line.split(":\t", 1) for line in g.read().splitlines() if ":\t" in line)
        return f"{pid} {cmd!r} {fields.get('State', '?').strip()} ppid {fields.get('PPid', '?').strip()}"
    except OSError:
        return f"{pid} (gone)"


@pytest.mark.parametrize("point", ["exec.create.recorded", "exec.start.launching", "exec.start.spawned"])
def test_exec_interrupted(d: TestDaemon, point: str) -> None:
    from helpers.crash import die_at, restart_armed

    cid = create(d, "ex-" + point.rsplit(".", 1)[1])
    assert d.docker("start", cid).returncode == 0
    init = inspect(d, cid)["State"]["Pid"]
    before = _serving(d, cid)
    cmd = ["sh", "-c", "sleep 1; echo ran > /tmp/exec-ran"]
    restart_armed(d, point)
    if point == "exec.create.recorded":
        die_at(d, point, lambda: d.api("POST", f"/containers/{cid}/exec", {"Cmd": cmd}))
    else:
        exec_id = _exec_create(d, cid, cmd)
        die_at(d, point, lambda: d.api("POST", f"/exec/{exec_id}/start", {"Detach": True}))
        assert d.api("GET", f"/exec/{exec_id}/json")[0] == 404  # exec records are forgotten, as dockerd does
    st = inspect(d, cid)["State"]
    assert st["Running"] is True and st["Pid"] == init  # the container lives on, adopted by the live restore
    time.sleep(1.5)
    ran = d.docker("exec", cid, "cat", "/tmp/exec-ran")
    if point == "exec.start.spawned":  # the exec's shim ran it to its end: reaped, reported, its files gone
        assert ran.stdout == "ran\n", ran.stderr
        deadline = time.monotonic() + 10
        while exec_files(d, cid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "exited with code 0" in d.log_tail(400)
    else:  # nothing was spawned
        assert ran.returncode != 0
    assert exec_files(d, cid) == []
    deadline = time.monotonic() + 5
    while set(cgroup_procs(d, cid)) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    left = set(cgroup_procs(d, cid)) - before
    assert left == set(), [_describe(pid) for pid in left]  # no process of the exec is left
    p = d.docker("exec", cid, "echo", "again")  # the exec can be retried
    assert p.stdout == "again\n", p.stderr
    gone(d, cid)


def test_exec_left_running_is_followed(d: TestDaemon) -> None:
    """An exec still running when the daemon restarts is followed to its end: its exit is published."""
    from helpers.crash import die_at, restart_armed

    cid = create(d, "ex-long")
    assert d.docker("start", cid).returncode == 0
    restart_armed(d, "exec.start.spawned")
    exec_id = _exec_create(d, cid, ["sh", "-c", "sleep 4; exit 3"])
    die_at(d, "exec.start.spawned", lambda: d.api("POST", f"/exec/{exec_id}/start", {"Detach": True}))
    assert [n for n in exec_files(d, cid) if n.endswith(".sock")]  # its shim still serves it
    since = int(time.time()) - 10
    status, _, body = d.api("GET", f"/events?since={since}&until={int(time.time()) + 8}"
                                   f"&filters=%7B%22event%22%3A%5B%22exec_die%22%5D%7D", timeout=20)
    assert status == 200
    dies = [json.loads(ln) for ln in body.splitlines() if ln.strip()]
    assert [e["Actor"]["Attributes"]["exitCode"] for e in dies if e["Actor"]["ID"] == cid] == ["3"], dies
    assert exec_files(d, cid) == []
    gone(d, cid)
