"""Cgroup drivers against the real kernel: limits written, enforced, and removed again.

Every test works below a unique top directory; the fixture kills what is left
and removes that directory from every hierarchy even when the test fails.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import fs
from dockyard.runtime.cgroups.v1 import V1Cgroup, parse_v1_mounts
from dockyard.runtime.cgroups.v2 import V2Cgroup

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

UNIFIED = "/sys/fs/cgroup/unified"


def v1_mounts() -> dict[str, list[str]]:
    with open("/proc/self/mountinfo") as f:
        return parse_v1_mounts(f.read())


class Child:
    """A forked process that waits for ``go()`` (sent after it joined the cgroup), then runs ``body``.

    ``body`` returns the exit code; the parent reads it through ``wait()``.
    """

    def __init__(self, body: Callable[[], int]) -> None:
        self._go_read, self._go_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 70
            try:
                os.close(self._go_write)
                os.read(self._go_read, 1)
                code = body()
            finally:
                os._exit(code)
        os.close(self._go_read)
        self.status: int | None = None

    def go(self) -> None:
        os.write(self._go_write, b"g")
        os.close(self._go_write)

    def wait(self, timeout: float = 20.0) -> int:
        """Exit status as ``os.waitstatus_to_exitcode`` gives it (negative for a signal)."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"child {self.pid} did not exit")
            time.sleep(0.005)
        return self.status

    def reap(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()


@pytest.fixture
def top() -> Iterator[str]:
    """A unique top cgroup path, removed from every hierarchy afterwards."""
    name = f"/dockyard-test-{secrets.token_hex(4)}"
    unified_enabled = _subtree_control(UNIFIED)
    yield name
    for mount in [*v1_mounts(), UNIFIED]:
        directory = mount + name
        for pid in fs.read_pids(directory):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        fs.wait_until(lambda d=directory: not fs.read_pids(d), 5)  # type: ignore[misc]
        fs.remove_tree(directory)
    leftovers = [m for m in [*v1_mounts(), UNIFIED] if os.path.exists(m + name)]
    assert not leftovers, f"cgroup directories left behind: {leftovers}"
    # Controllers the test had enabled at the cgroup2 root go back to how they were.
    # (EBUSY: cgroups made by someone else since use it now, so it is not ours to turn off)
    for controller in _subtree_control(UNIFIED) - unified_enabled:
        try:
            fs.write(UNIFIED, "cgroup.subtree_control", "-" + controller)
        except fs.CgroupError as e:
            if "busy" not in str(e):
                raise


def _subtree_control(directory: str) -> set[str]:
    try:
        return set(fs.read(directory, "cgroup.subtree_control").split())
    except OSError:
        return set()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        child.reap()


@pytest.fixture
def cg(top: str) -> Iterator[cgroups.Cgroup]:
    group = cgroups.open_cgroup(f"{top}/x", "x")
    assert isinstance(group, V1Cgroup)  # this host is hybrid: resource controllers on v1
    group.create()
    yield group
    group.destroy(kill=True)


def start(cg: cgroups.Cgroup, children: list[Child], body: Callable[[], int]) -> Child:
    child = Child(body)
    children.append(child)
    cg.add_pid(child.pid)
    child.go()
    return child


def sleep_forever() -> int:
    while True:
        time.sleep(60)


def cgfile(controller: str, cg: cgroups.Cgroup, name: str) -> str:
    return fs.read(f"/sys/fs/cgroup/{controller}{cg.path}", name).strip()


def blkio_weight_file(cg: cgroups.Cgroup) -> str | None:
    """The weight file this kernel's I/O scheduler offers (BFQ's, CFQ's), or None (mq-deadline, none)."""
    directory = f"/sys/fs/cgroup/blkio{cg.path}"
    return next((n for n in ("blkio.bfq.weight", "blkio.weight") if os.path.exists(f"{directory}/{n}")), None)


def test_create_apply_reads_back(cg: cgroups.Cgroup, caplog: pytest.LogCaptureFixture) -> None:
    assert cg.exists()
    cg.apply(
        {
            "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20, "swappiness": 10},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 300},
        }
    )
    assert cgfile("memory", cg, "memory.limit_in_bytes") == str(64 << 20)
    assert cgfile("memory", cg, "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert cgfile("memory", cg, "memory.soft_limit_in_bytes") == str(32 << 20)
    assert cgfile("memory", cg, "memory.swappiness") == "10"
    assert cgfile("cpu", cg, "cpu.shares") == "512"
    assert cgfile("cpu", cg, "cpu.cfs_quota_us") == "50000"
    assert cgfile("cpu", cg, "cpu.cfs_period_us") == "100000"
    assert cgfile("cpuset", cg, "cpuset.cpus") == "0"
    assert cgfile("pids", cg, "pids.max") == "42"
    weight_file = blkio_weight_file(cg)
    if weight_file is not None:
        assert cgfile("blkio", cg, weight_file).split()[-1] == "300"
    else:
        # no scheduler with weights: the runtime warns and ignores the weight, as runc does
        assert "blkio weight not supported" in caplog.text
    # cpuset of the shared parent got the root's cpus, or tasks could not join
    parent = os.path.dirname(f"/sys/fs/cgroup/cpuset{cg.path}")
    assert fs.read(parent, "cpuset.cpus") == fs.read("/sys/fs/cgroup/cpuset", "cpuset.cpus")


def test_memory_limit_oom_kills_and_is_counted(cg: cgroups.Cgroup, children: list[Child]) -> None:
    cg.apply({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    assert cg.oom_kill_count() == 0

    def hog() -> int:
        blocks = [bytearray(b"\x01") * (8 << 20) for _ in range(32)]  # 256 MiB, every page touched
        return len(blocks) and 0

    child = start(cg, children, hog)
    assert child.wait() == -signal.SIGKILL
    assert cg.oom_kill_count() >= 1


def test_disabled_oom_killer_blocks_and_destroy_still_kills(
    cg: cgroups.Cgroup, children: list[Child]
) -> None:
    cg.apply({"memory": {"limit": 32 << 20, "swap": 32 << 20, "disableOOMKiller": True}})

    def hog() -> int:
        blocks = [bytearray(b"\x01") * (8 << 20) for _ in range(32)]
        return len(blocks) and 0

    child = start(cg, children, hog)
    assert fs.wait_until(lambda: "under_oom 1" in cgfile("memory", cg, "memory.oom_control"), 10)
    assert child.status is None and os.waitpid(child.pid, os.WNOHANG) == (0, 0)
    assert cg.oom_kill_count() == 0
    started = time.monotonic()
    cg.destroy(kill=True)
    assert time.monotonic() - started < 5
    assert child.wait() == -signal.SIGKILL
    assert not cg.exists()


def test_pids_limit_makes_fork_fail(cg: cgroups.Cgroup, children: list[Child]) -> None:
    cg.apply({"pids": {"limit": 5}})

    def forker() -> int:
        forked = 0
        for _ in range(20):
            try:
                pid = os.fork()
            except BlockingIOError:  # EAGAIN: the pids controller said no
                return forked
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            forked += 1
        return 100

    child = start(cg, children, forker)
    assert child.wait() == 4  # the forker itself plus four children fill five pids
    assert cg.stats()["pids"]["limit"] == 5


def test_freeze_thaw_state(cg: cgroups.Cgroup, children: list[Child]) -> None:
    def spin() -> int:
        while True:
            pass

    start(cg, children, spin)
    time.sleep(0.05)
    assert cg.state() == "running"
    cg.freeze()
    assert cg.state() == "paused"
    frozen_usage = cg.stats()["cpu"]["usage_total_ns"]
    time.sleep(0.15)
    assert cg.stats()["cpu"]["usage_total_ns"] == frozen_usage
    cg.thaw()
    assert cg.state() == "running"
    time.sleep(0.15)
    assert cg.stats()["cpu"]["usage_total_ns"] > frozen_usage


def test_stats_shape(cg: cgroups.Cgroup, children: list[Child]) -> None:
    cg.apply({"pids": {"limit": 100}, "memory": {"limit": 256 << 20}})

    def work() -> int:
        data = bytearray(b"\x02") * (16 << 20)
        # 0.1 s of CPU, not of wall time: on a loaded host a wall-clock spin may get far less CPU
        while time.process_time() < 0.1:
            pass
        time.sleep(30)
        return len(data) and 0

    start(cg, children, work)
    assert fs.wait_until(lambda: cg.stats()["memory"]["usage"] > 16 << 20, 5)
    time.sleep(0.15)
    stats = cg.stats()
    assert set(stats) == {"cpu", "memory", "pids", "blkio"}
    cpu = stats["cpu"]
    assert cpu["usage_total_ns"] > 50_000_000
    assert sum(cpu["usage_percpu_ns"]) == pytest.approx(cpu["usage_total_ns"], rel=0.05)
    assert cpu["user_ns"] + cpu["system_ns"] > 0
    assert set(cpu["throttling"]) == {"periods", "throttled_periods", "throttled_time_ns"}
    memory = stats["memory"]
    assert memory["limit"] == 256 << 20
    assert memory["max_usage"] >= memory["usage"] > 16 << 20
    assert "total_rss" in memory["stats"] or "rss" in memory["stats"]
    assert stats["pids"] == {"current": 1, "limit": 100}
    assert isinstance(stats["blkio"]["io_service_bytes_recursive"], list)
    assert cg.pids() == [children[0].pid]


def test_update_changes_live_limits(cg: cgroups.Cgroup, children: list[Child]) -> None:
    cg.apply(
        {"memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 10}, "cpu": {"quota": 20000}}
    )
    start(cg, children, sleep_forever)
    # growing memory+swap past the old memsw needs memsw written first; runc's order
    cg.update(
        {
            "memory": {"limit": 128 << 20, "swap": 256 << 20},
            "pids": {"limit": -1},
            "cpu": {"period": 50000, "quota": 10000},
        }
    )
    assert cgfile("memory", cg, "memory.limit_in_bytes") == str(128 << 20)
    assert cgfile("memory", cg, "memory.memsw.limit_in_bytes") == str(256 << 20)
    assert cgfile("pids", cg, "pids.max") == "max"
    assert cgfile("cpu", cg, "cpu.cfs_period_us") == "50000"
    assert cgfile("cpu", cg, "cpu.cfs_quota_us") == "10000"
    # shrinking needs memory first
    cg.update({"memory": {"limit": 48 << 20, "swap": 48 << 20}})
    assert cgfile("memory", cg, "memory.memsw.limit_in_bytes") == str(48 << 20)
    with pytest.raises(cgroups.CgroupError, match="memory.limit_in_bytes"):
        cg.update({"memory": {"limit": 96 << 20, "swap": 64 << 20}})  # swap below memory: kernel refuses


def test_devices_allow_list_is_enforced(cg: cgroups.Cgroup, children: list[Child]) -> None:
    cg.apply(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ]
        }
    )
    assert cgfile("devices", cg, "devices.list") == "c 1:3 rwm"

    def probe() -> int:
        os.close(os.open("/dev/null", os.O_RDONLY))
        try:
            os.open("/dev/zero", os.O_RDONLY)
        except PermissionError:
            return 0
        return 1

    assert start(cg, children, probe).wait() == 0


def _a_disk() -> tuple[int, int] | None:
    """major:minor of a whole disk (throttles need a real block device)."""
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "zram", "ram")):
            with open(f"/sys/block/{name}/dev") as f:
                major, minor = f.read().strip().split(":")
            return int(major), int(minor)
    return None


def test_blkio_throttles(cg: cgroups.Cgroup) -> None:
    disk = _a_disk()
    if disk is None:
        pytest.skip("no block device")
    major, minor = disk
    cg.apply(
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}],
            }
        }
    )
    assert cgfile("blkio", cg, "blkio.throttle.read_bps_device") == f"{major}:{minor} {1 << 20}"
    assert cgfile("blkio", cg, "blkio.throttle.write_iops_device") == f"{major}:{minor} 100"


def test_cpuset_pins_tasks(cg: cgroups.Cgroup, children: list[Child]) -> None:
    cg.apply({"cpu": {"cpus": "0"}})
    child = start(cg, children, lambda: 0 if os.sched_getaffinity(0) == {0} else 1)
    assert child.wait() == 0


def test_join_self(cg: cgroups.Cgroup, children: list[Child]) -> None:
    def join() -> int:
        cg.join_self()
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        by_hierarchy = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines}
        expected = {
            "memory",
            "cpu",
            "cpuacct",
            "pids",
            "freezer",
            "devices",
            "blkio",
            "cpuset",
            "name=systemd",
        }
        if os.path.exists(UNIFIED + "/cgroup.procs"):
            expected.add("")  # hybrid host: the unified hierarchy is joined too, like runc does
        return 0 if all(by_hierarchy.get(h) == cg.path for h in expected) else 1

    child = Child(join)
    children.append(child)
    child.go()
    assert child.wait() == 0


def test_destroy_kills_nested_tasks_and_removes_every_directory(top: str, children: list[Child]) -> None:
    cg = cgroups.open_cgroup(f"{top}/x", "x")
    cg.create()
    nested = f"/sys/fs/cgroup/memory{top}/x/inner"
    os.mkdir(nested)

    def spawn_and_hide() -> int:
        pid = os.fork()
        if pid == 0:
            fs.write(nested, "cgroup.procs", os.getpid())
            sleep_forever()
        sleep_forever()
        return 0

    child = start(cg, children, spawn_and_hide)
    assert fs.wait_until(lambda: len(cg.pids()) == 2, 5)
    assert fs.wait_until(lambda: bool(fs.read_pids(nested)), 5)
    with pytest.raises(cgroups.CgroupError, match="still has processes"):
        cg.destroy(kill=False, timeout=0.1)
    cg.destroy(kill=True)
    assert child.wait() == -signal.SIGKILL
    assert not cg.exists()
    for mount in v1_mounts():
        assert not os.path.exists(mount + top), mount  # the emptied shared parent went too
    cg.destroy(kill=True)  # idempotent


def test_v2_driver_on_unified_hierarchy(top: str, children: list[Child]) -> None:
    """The v2 driver, run against the cgroup2 mount this hybrid host has (hugetlb only)."""
    if not os.path.exists(UNIFIED + "/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy mounted")
    cg = V2Cgroup(f"{top}/x", UNIFIED)
    try:
        cg.create()
        assert cg.exists() and cg.mount_sources() == {"cgroup2": f"{UNIFIED}{top}/x"}
        if "hugetlb" in fs.read(UNIFIED, "cgroup.controllers").split():
            cg.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
            assert fs.read(cg.dir, "hugetlb.2MB.max") == str(4 << 21)
        with pytest.raises(cgroups.CgroupError, match="memory controller is not enabled"):
            cg.apply({"memory": {"limit": 1 << 26}})
        with pytest.raises(cgroups.CgroupError, match="not supported on cgroup v2"):
            cg.apply({"devices": [{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
        child = start(cg, children, sleep_forever)
        assert cg.pids() == [child.pid]
        cg.freeze()
        assert cg.state() == "paused"
        cg.thaw()
        assert cg.state() == "running"
        assert set(cg.stats()) == {"cpu", "memory", "pids", "blkio"}
        cg.destroy(kill=True)
        assert child.wait() == -signal.SIGKILL
        assert not os.path.exists(UNIFIED + top)
    finally:
        cg.destroy(kill=True)


def test_hugetlb_limit_goes_to_the_hybrid_unified_hierarchy(
    cg: cgroups.Cgroup, children: list[Child]
) -> None:
    """This host has hugetlb only on cgroup2; the v1 driver puts the limit there (the task is there too)."""
    if "hugetlb" in v1_mounts_controllers():
        pytest.skip("hugetlb is a v1 controller here")
    if "hugetlb" not in fs.read(UNIFIED, "cgroup.controllers").split():
        pytest.skip("no hugetlb controller")
    start(cg, children, sleep_forever)
    cg.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 3 << 21}]})
    assert fs.read(UNIFIED + cg.path, "hugetlb.2MB.max") == str(3 << 21)
    cg.update({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]})
    assert fs.read(UNIFIED + cg.path, "hugetlb.2MB.max") == str(1 << 21)


def v1_mounts_controllers() -> set[str]:
    return {c for carried in v1_mounts().values() for c in carried}


def test_siblings_created_while_others_are_destroyed(top: str) -> None:
    """destroy() removes the shared parent when it empties; a concurrent create() must still succeed."""
    errors: list[BaseException] = []

    def churn(name: str) -> None:
        try:
            for _ in range(25):
                group = cgroups.open_cgroup(f"{top}/{name}", name)
                group.create()
                assert fs.read(f"/sys/fs/cgroup/cpuset{top}/{name}", "cpuset.cpus")
                group.destroy()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(f"c{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for mount in v1_mounts():
        assert not os.path.exists(mount + top)
