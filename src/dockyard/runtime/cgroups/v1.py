"""cgroup v1 driver: one directory per mounted hierarchy, limits written like runc's fs driver."""

from __future__ import annotations

import os
import time

from dockyard.runtime.cgroups import fs
from dockyard.runtime.cgroups.base import Cgroup
from dockyard.runtime.cgroups.fs import CgroupError

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from typing import Any

KNOWN_CONTROLLERS = frozenset(
    "cpu cpuacct cpuset memory devices freezer net_cls net_prio blkio perf_event hugetlb pids rdma misc".split()
)
_UNLIMITED = -1


def parse_v1_mounts(mountinfo: str) -> dict[str, list[str]]:
    """Mount point → the controllers (or ``name=…`` hierarchy) it carries, from /proc/self/mountinfo."""
    mounts: dict[str, list[str]] = {}
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields = after.split()
        if len(fields) < 3 or fields[0] != "cgroup":
            continue
        mount_point = before.split()[4].replace("\\040", " ")
        options = fields[2].split(",")
        carried = [o for o in options if o in KNOWN_CONTROLLERS or o.startswith("name=")]
        if carried:
            mounts[mount_point] = carried
    return mounts



class _ParentNotFilled(Exception):
    """A cpuset level found with an empty parent: the walk starts again from the top."""

class V1Cgroup(Cgroup):
    """A container cgroup spread over the v1 hierarchies the host mounts."""

    def __init__(self, path: str, mounts: dict[str, list[str]], unified_root: str | None = None) -> None:
        """``unified_root``: the hybrid host's cgroup2 mount, joined too (as runc does) but never mounted."""
        self.path = "/" + path.strip("/")
        self._mounts = mounts
        self._dirs: dict[str, str] = {}  # controller or name=… → container directory
        self._by_mount: dict[str, str] = {}  # mount point → container directory
        for mount_point, carried in mounts.items():
            directory = mount_point.rstrip("/") + self.path
            self._by_mount[mount_point] = directory
            for controller in carried:
                self._dirs[controller] = directory
        self._unified = unified_root.rstrip("/") + self.path if unified_root else None

    # ---------------------------------------------------------------- lifecycle

    def _dir(self, controller: str) -> str | None:
        return self._dirs.get(controller)

    def _need(self, controller: str, what: str) -> str:
        directory = self._dirs.get(controller)
        if directory is None:
            raise CgroupError(f"cannot set {what} limit: the {controller} cgroup controller is not mounted")
        return directory

    def create(self) -> None:
        for mount_point, directory in self._by_mount.items():
            if "cpuset" in self._mounts[mount_point]:
                self._create_cpuset(mount_point)
            else:
                fs.makedirs(directory)
        if self._unified:
            fs.makedirs(self._unified)

    def _create_cpuset(self, mount_point: str) -> None:
        """mkdir each level and give it the parent's cpus/mems; an empty cpuset refuses tasks."""
        for attempt in range(5):
            current = mount_point.rstrip("/")
            try:
                for part in self.path.strip("/").split("/"):
                    parent, current = current, current + "/" + part
                    try:
                        os.mkdir(current)
                    except FileExistsError:
                        pass
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        if not fs.read(current, name).strip():
                            value = fs.read(parent, name).strip()
                            if not value:
                                # the parent was removed and made again by another create that has not
                                # filled it yet: copying its emptiness would leave this cpuset unusable
                                raise _ParentNotFilled(f"{parent}/{name} is empty")
                            fs.write(current, name, value)
                return
            except _ParentNotFilled:
                if attempt == 4:
                    raise CgroupError(f"cannot fill the cpuset of {self.path}: its parent stays empty") from None
            except (OSError, CgroupError) as exc:
                # Another container's destroy removed an empty shared parent meanwhile (ENOENT, or
                # ENODEV while it is going away): walk again.
                if attempt == 4 or not fs.is_vanishing(exc):
                    raise

    def add_pid(self, pid: int) -> None:
        for directory in self._by_mount.values():
            fs.write(directory, "cgroup.procs", pid)
        if self._unified:
            fs.write(self._unified, "cgroup.procs", pid)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in [*self._by_mount.values(), *filter(None, [self._unified])])

    def mount_sources(self) -> dict[str, str]:
        """Mount directory name (``cpu``, ``cpu,cpuacct``, ``systemd``) → container directory."""
        return {os.path.basename(m.rstrip("/")): d for m, d in self._by_mount.items()}

    def _directories(self) -> list[tuple[str, str]]:
        pairs = list(self._by_mount.items())
        if self._unified:
            pairs.append((self._unified[: -len(self.path)], self._unified))
        return pairs

    def pids(self) -> list[int]:
        directory = self._dir("pids") or self._dir("freezer") or next(iter(self._by_mount.values()), None)
        return fs.read_pids(directory) if directory else []

    # ---------------------------------------------------------------- freezer

    def freeze(self, timeout: float = 10.0) -> None:
        directory = self._need("freezer", "freezer")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Re-asking FROZEN nudges tasks that were busy (vfork, signals) the first time.
            fs.write(directory, "freezer.state", "FROZEN")
            if fs.wait_until(lambda: fs.read(directory, "freezer.state") == "FROZEN", 0.01):
                return
        fs.write(directory, "freezer.state", "THAWED")
        raise CgroupError(f"timed out freezing cgroup {self.path}")

    def thaw(self) -> None:
        fs.write(self._need("freezer", "freezer"), "freezer.state", "THAWED")

    def state(self) -> str:
        directory = self._dir("freezer")
        if directory is None:
            return "running"
        try:
            value = fs.read(directory, "freezer.state")
        except OSError:
            return "running"
        return "running" if value == "THAWED" else "paused"

    # ---------------------------------------------------------------- limits

    def apply(self, resources: dict[str, Any]) -> None:
        if not resources:
            return
        if resources.get("unified"):
            raise CgroupError("invalid configuration: cannot use unified on cgroup v1")
        if resources.get("devices") is not None:
            self._apply_devices(resources["devices"])
        if resources.get("memory"):
            self._apply_memory(resources["memory"])
        if resources.get("cpu"):
            self._apply_cpu(resources["cpu"])
        pids_limit = (resources.get("pids") or {}).get("limit")
        if pids_limit:
            value = "max" if pids_limit < 0 else str(pids_limit)
            fs.write(self._need("pids", "pids"), "pids.max", value)
        if resources.get("blockIO"):
            self._apply_blkio(resources["blockIO"])
        if resources.get("hugepageLimits"):
            self._apply_hugetlb(resources["hugepageLimits"])
        network = resources.get("network") or {}
        if network.get("classID"):
            fs.write(self._need("net_cls", "net_cls"), "net_cls.classid", int(network["classID"]))
        for prio in network.get("priorities") or ():
            fs.write(
                self._need("net_prio", "net_prio"), "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}"
            )

    def _apply_hugetlb(self, limits: list[dict[str, Any]]) -> None:
        """v1 hugetlb if mounted; else the hybrid host's cgroup2 hierarchy, where hugetlb often lives."""
        directory = self._dir("hugetlb")
        if directory is not None:
            for limit in limits:
                fs.write(directory, f"hugetlb.{limit['pageSize']}.limit_in_bytes", int(limit["limit"]))
            return
        if not self._unified:
            self._need("hugetlb", "hugetlb")
        assert self._unified is not None
        current = self._unified[: -len(self.path)]
        for part in self.path.strip("/").split("/"):
            try:
                available = fs.read(current, "cgroup.controllers").split()
            except OSError:
                available = []
            if "hugetlb" not in available:
                raise CgroupError("cannot set hugetlb limit: no hugetlb controller on cgroup v1 or v2")
            if "hugetlb" not in fs.read(current, "cgroup.subtree_control").split():
                fs.write(current, "cgroup.subtree_control", "+hugetlb")
            current = current + "/" + part
        for limit in limits:
            fs.write(self._unified, f"hugetlb.{limit['pageSize']}.max", int(limit["limit"]))

    def _apply_devices(self, rules: list[dict[str, Any]]) -> None:
        directory = self._need("devices", "devices")
        for rule in rules:
            target = "devices.allow" if rule.get("allow") else "devices.deny"
            fs.write(directory, target, fs.parse_device_rule(rule))

    def _apply_memory(self, memory: dict[str, Any]) -> None:
        directory = self._need("memory", "memory")
        limit = int(memory.get("limit") or 0)
        swap = int(memory.get("swap") or 0)  # OCI v1 swap means memory+swap
        has_swap_file = os.path.exists(os.path.join(directory, "memory.memsw.limit_in_bytes"))
        if limit == _UNLIMITED and swap == 0 and has_swap_file:
            swap = _UNLIMITED
        if limit and swap:
            current = fs.read_int(directory, "memory.limit_in_bytes")
            # The kernel wants memsw >= memory at every step, so the order depends on the change.
            if swap == _UNLIMITED or current < swap:
                fs.write(directory, "memory.memsw.limit_in_bytes", swap)
                fs.write(directory, "memory.limit_in_bytes", limit)
            else:
                fs.write(directory, "memory.limit_in_bytes", limit)
                fs.write(directory, "memory.memsw.limit_in_bytes", swap)
        else:
            if limit:
                fs.write(directory, "memory.limit_in_bytes", limit)
            if swap:
                fs.write(directory, "memory.memsw.limit_in_bytes", swap)
        if memory.get("reservation"):
            fs.write(directory, "memory.soft_limit_in_bytes", int(memory["reservation"]))
        if memory.get("disableOOMKiller"):
            fs.write(directory, "memory.oom_control", 1)
        if memory.get("swappiness") is not None:
            swappiness = int(memory["swappiness"])
            if not 0 <= swappiness <= 100:
                raise CgroupError(f"invalid value:{swappiness}, valid memory swappiness range is 0-100")
            fs.write(directory, "memory.swappiness", swappiness)

    def _apply_cpu(self, cpu: dict[str, Any]) -> None:
        if cpu.get("cpus") or cpu.get("mems"):
            cpuset = self._need("cpuset", "cpuset")
            if cpu.get("cpus"):
                fs.write(cpuset, "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                fs.write(cpuset, "cpuset.mems", cpu["mems"])
        shares, quota, period = cpu.get("shares"), cpu.get("quota"), cpu.get("period")
        burst = cpu.get("burst")
        if not (shares or quota or period or burst is not None or cpu.get("idle") is not None):
            return
        directory = self._need("cpu", "cpu")
        if shares:
            fs.write(directory, "cpu.shares", int(shares))
        pending_period = None
        if period:
            try:
                fs.write(directory, "cpu.cfs_period_us", int(period))
            except CgroupError:
                # A shorter period can fail against the old quota; retry after the quota.
                if not quota:
                    raise
                pending_period = int(period)
        if quota:
            fs.write(directory, "cpu.cfs_quota_us", int(quota))
            if pending_period is not None:
                fs.write(directory, "cpu.cfs_period_us", pending_period)
        if burst is not None:
            fs.write(directory, "cpu.cfs_burst_us", int(burst))
        if cpu.get("idle") is not None:
            fs.write(directory, "cpu.idle", int(cpu["idle"]))

    def _apply_blkio(self, blkio: dict[str, Any]) -> None:
        directory = self._need("blkio", "blkio")
        # With multi-queue schedulers only BFQ's files exist, and with none of them no weight at all.
        weight_file = next(
            (n for n in ("blkio.bfq.weight", "blkio.weight") if os.path.exists(os.path.join(directory, n))),
            None,
        )
        device_file = (
            "blkio.bfq.weight_device" if weight_file == "blkio.bfq.weight" else "blkio.weight_device"
        )
        if blkio.get("weight"):
            if weight_file is None:
                fs.warn("blkio weight not supported by the kernel's I/O scheduler; weight ignored")
            else:
                fs.write(directory, weight_file, int(blkio["weight"]))
        if blkio.get("leafWeight") and os.path.exists(os.path.join(directory, "blkio.leaf_weight")):
            fs.write(directory, "blkio.leaf_weight", int(blkio["leafWeight"]))
        for device in blkio.get("weightDevice") or ():
            if device.get("weight") is None:
                continue
            if weight_file is None:
                fs.warn("blkio weight_device not supported by the kernel's I/O scheduler; ignored")
                continue
            fs.write(directory, device_file, f"{device['major']}:{device['minor']} {device['weight']}")
        throttles = {
            "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
            "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
            "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
            "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
        }
        for key, name in throttles.items():
            for device in blkio.get(key) or ():
                fs.write(directory, name, f"{device['major']}:{device['minor']} {device['rate']}")

    # ---------------------------------------------------------------- figures

    def oom_events_file(self) -> str | None:
        directory = self._dir("memory")
        return None if directory is None else os.path.join(directory, "memory.oom_control")

    def oom_kill_count(self) -> int:
        directory = self._dir("memory")
        if directory is None:
            return 0
        return fs.read_keyed(directory, "memory.oom_control").get("oom_kill", 0)

    def stats(self) -> dict[str, Any]:
        return {
            "cpu": self._cpu_stats(),
            "memory": self._memory_stats(),
            "pids": self._pids_stats(),
            "blkio": self._blkio_stats(),
        }

    def _cpu_stats(self) -> dict[str, Any]:
        acct = self._dir("cpuacct")
        cpu = self._dir("cpu")
        result: dict[str, Any] = {
            "usage_total_ns": 0,
            "usage_percpu_ns": [],
            "user_ns": 0,
            "system_ns": 0,
            "throttling": {"periods": 0, "throttled_periods": 0, "throttled_time_ns": 0},
        }
        if acct:
            result["usage_total_ns"] = fs.read_int(acct, "cpuacct.usage")
            try:
                result["usage_percpu_ns"] = [int(v) for v in fs.read(acct, "cpuacct.usage_percpu").split()]
            except OSError:
                pass
            if os.path.exists(os.path.join(acct, "cpuacct.usage_user")):
                result["user_ns"] = fs.read_int(acct, "cpuacct.usage_user")
                result["system_ns"] = fs.read_int(acct, "cpuacct.usage_sys")
            else:
                ticks = fs.read_keyed(acct, "cpuacct.stat")
                per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
                result["user_ns"] = ticks.get("user", 0) * per_tick
                result["system_ns"] = ticks.get("system", 0) * per_tick
        if cpu:
            stat = fs.read_keyed(cpu, "cpu.stat")
            result["throttling"] = {
                "periods": stat.get("nr_periods", 0),
                "throttled_periods": stat.get("nr_throttled", 0),
                "throttled_time_ns": stat.get("throttled_time", 0),
            }
        return result

    def _memory_stats(self) -> dict[str, Any]:
        directory = self._dir("memory")
        if directory is None:
            return {"usage": 0, "max_usage": 0, "limit": 0, "failcnt": 0, "stats": {}}
        return {
            "usage": fs.read_int(directory, "memory.usage_in_bytes"),
            "max_usage": fs.read_int(directory, "memory.max_usage_in_bytes"),
            "limit": fs.read_int(directory, "memory.limit_in_bytes"),
            "failcnt": fs.read_int(directory, "memory.failcnt"),
            "stats": fs.read_keyed(directory, "memory.stat"),
        }

    def _pids_stats(self) -> dict[str, int]:
        directory = self._dir("pids")
        if directory is None:
            return {"current": 0, "limit": 0}
        return {
            "current": fs.read_int(directory, "pids.current"),
            "limit": fs.read_int(directory, "pids.max"),
        }

    def _blkio_stats(self) -> dict[str, list[dict[str, Any]]]:
        directory = self._dir("blkio")
        result: dict[str, list[dict[str, Any]]] = {
            "io_service_bytes_recursive": [],
            "io_serviced_recursive": [],
            "io_queue_recursive": [],
            "io_service_time_recursive": [],
            "io_wait_time_recursive": [],
            "io_merged_recursive": [],
            "io_time_recursive": [],
            "sectors_recursive": [],
        }
        if directory is None:
            return result
        for key, names in (
            (
                "io_service_bytes_recursive",
                (
                    "blkio.io_service_bytes_recursive",
                    "blkio.bfq.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                ),
            ),
            (
                "io_serviced_recursive",
                (
                    "blkio.io_serviced_recursive",
                    "blkio.bfq.io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                ),
            ),
        ):
            for name in names:
                entries = parse_blkio_entries(directory, name)
                if entries is not None:
                    result[key] = entries
                    if entries:
                        break
        return result


def parse_blkio_entries(directory: str, name: str) -> list[dict[str, Any]] | None:
    """``major:minor Op value`` lines → Docker's blkio entries; None if the file is missing."""
    try:
        text = fs.read(directory, name)
    except OSError:
        return None
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = parts[0].split(":")
        entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return entries
