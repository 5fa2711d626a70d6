"""cgroup v2 driver: one directory in the unified hierarchy, limits written like runc's fs2 driver."""

from __future__ import annotations

import os

from dockyard.runtime.cgroups import fs
from dockyard.runtime.cgroups.base import Cgroup
from dockyard.runtime.cgroups.fs import CgroupError

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from typing import Any

_WANTED_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")

# The device nodes every container gets (runc's defaults plus Docker's): rules that only
# allow these, after a deny-all, change nothing v2 would have to enforce with eBPF.
_DEFAULT_DEVICE_RULES = frozenset(
    {
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c 5:2 rwm",
        "c 136:* rwm",
        "c 10:200 rwm",
    }
)


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2–262144) → cpu.weight (1–10000), the kernel's documented mapping."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10–1000) → io.weight (1–10000)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int, limit: int) -> int:
    """OCI memory.swap (memory+swap) → memory.swap.max (swap alone); -1 stays unlimited."""
    if swap in (0, -1):
        return swap
    if limit in (0, -1):
        raise CgroupError("unable to set swap limit without memory limit")
    if limit > swap:
        raise CgroupError(f"memory+swap limit ({swap}) should be larger than memory limit ({limit})")
    return swap - limit


def devices_need_ebpf(rules: list[dict[str, Any]]) -> bool:
    """True when the rules restrict more than the default device set (v2 would need an eBPF program)."""
    for rule in rules:
        text = fs.parse_device_rule(rule)
        if text.startswith("a "):
            continue  # deny-all / allow-all: the default policy
        if not rule.get("allow") or text not in _DEFAULT_DEVICE_RULES:
            return True
    return False


class V2Cgroup(Cgroup):
    """A container cgroup in the unified hierarchy mounted at ``root``."""

    def __init__(self, path: str, root: str = "/sys/fs/cgroup") -> None:
        self.path = "/" + path.strip("/")
        self.root = root.rstrip("/")
        self.dir = self.root + self.path

    def create(self) -> None:
        current = self.root
        parts = self.path.strip("/").split("/")
        for part in parts:
            self._enable_controllers(current)
            current = current + "/" + part
            if not os.path.isdir(current):
                fs.makedirs(current)

    @staticmethod
    def _enable_controllers(directory: str) -> None:
        """Delegate the available controllers to children (needed at every level above the leaf)."""
        try:
            available = fs.read(directory, "cgroup.controllers").split()
            enabled = fs.read(directory, "cgroup.subtree_control").split()
        except OSError:
            return
        missing = [c for c in _WANTED_CONTROLLERS if c in available and c not in enabled]
        if missing:
            fs.write(directory, "cgroup.subtree_control", " ".join("+" + c for c in missing))

    def add_pid(self, pid: int) -> None:
        fs.write(self.dir, "cgroup.procs", pid)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def mount_sources(self) -> dict[str, str]:
        """On v2 one directory holds everything; the key names the filesystem type."""
        return {"cgroup2": self.dir}

    def _directories(self) -> list[tuple[str, str]]:
        return [(self.root, self.dir)]

    def pids(self) -> list[int]:
        return fs.read_pids(self.dir)

    def freeze(self, timeout: float = 10.0) -> None:
        fs.write(self.dir, "cgroup.freeze", 1)
        if not fs.wait_until(lambda: fs.read_keyed(self.dir, "cgroup.events").get("frozen") == 1, timeout):
            fs.write(self.dir, "cgroup.freeze", 0)
            raise CgroupError(f"timed out freezing cgroup {self.path}")

    def thaw(self) -> None:
        fs.write(self.dir, "cgroup.freeze", 0)

    def state(self) -> str:
        try:
            return "paused" if fs.read_int(self.dir, "cgroup.freeze") == 1 else "running"
        except ValueError:
            return "running"

    def _kill_all(self) -> None:
        if os.path.exists(os.path.join(self.dir, "cgroup.kill")):
            fs.write(self.dir, "cgroup.kill", 1)  # atomic for the whole subtree (Linux 5.14+)
        else:
            super()._kill_all()

    # ---------------------------------------------------------------- limits

    def _need(self, name: str) -> None:
        """Fail clearly when the hierarchy does not give this cgroup the controller."""
        try:
            available = fs.read(os.path.dirname(self.dir), "cgroup.subtree_control").split()
        except OSError:
            available = []
        if name not in available:
            raise CgroupError(
                f"cannot set {name} limit: the {name} controller is not enabled for {self.path}"
            )

    def apply(self, resources: dict[str, Any]) -> None:
        if not resources:
            return
        devices = resources.get("devices")
        if devices and devices_need_ebpf(devices):
            raise CgroupError("device cgroup rules beyond the defaults are not supported on cgroup v2")
        memory = resources.get("memory") or {}
        if memory:
            self._apply_memory(memory)
        cpu = resources.get("cpu") or {}
        if cpu:
            self._apply_cpu(cpu)
        pids_limit = (resources.get("pids") or {}).get("limit")
        if pids_limit:
            self._need("pids")
            fs.write(self.dir, "pids.max", "max" if pids_limit < 0 else pids_limit)
        if resources.get("blockIO"):
            self._apply_io(resources["blockIO"])
        for limit in resources.get("hugepageLimits") or ():
            self._need("hugetlb")
            fs.write(self.dir, f"hugetlb.{limit['pageSize']}.max", int(limit["limit"]))
        for key, value in (resources.get("unified") or {}).items():
            if "/" in key or key.startswith("."):
                raise CgroupError(f"invalid unified resource key {key!r}")
            fs.write(self.dir, key, value)

    def _apply_memory(self, memory: dict[str, Any]) -> None:
        limit = int(memory.get("limit") or 0)
        swap = swap_to_v2(int(memory.get("swap") or 0), limit)
        if limit or swap or memory.get("reservation"):
            self._need("memory")
        if swap:
            fs.write(self.dir, "memory.swap.max", "max" if swap == -1 else swap)
        if limit:
            fs.write(self.dir, "memory.max", "max" if limit == -1 else limit)
        if memory.get("reservation"):
            fs.write(self.dir, "memory.low", int(memory["reservation"]))
        if memory.get("swappiness") is not None or memory.get("disableOOMKiller"):
            fs.warn("memory swappiness and disableOOMKiller have no cgroup v2 equivalent; ignored")

    def _apply_cpu(self, cpu: dict[str, Any]) -> None:
        if cpu.get("cpus") or cpu.get("mems"):
            self._need("cpuset")
            if cpu.get("cpus"):
                fs.write(self.dir, "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                fs.write(self.dir, "cpuset.mems", cpu["mems"])
        quota, period = int(cpu.get("quota") or 0), int(cpu.get("period") or 0)
        if cpu.get("shares") or quota or period or cpu.get("burst") is not None:
            self._need("cpu")
        if cpu.get("shares"):
            fs.write(self.dir, "cpu.weight", shares_to_weight(int(cpu["shares"])))
        if quota or period:
            value = str(quota) if quota > 0 else "max"
            if period:
                value += f" {period}"
            fs.write(self.dir, "cpu.max", value)
        if cpu.get("burst") is not None:
            fs.write(self.dir, "cpu.max.burst", int(cpu["burst"]))
        if cpu.get("idle") is not None:
            fs.write(self.dir, "cpu.idle", int(cpu["idle"]))

    def _apply_io(self, blkio: dict[str, Any]) -> None:
        self._need("io")
        bfq = os.path.exists(os.path.join(self.dir, "io.bfq.weight"))
        if blkio.get("weight"):
            if bfq:
                fs.write(self.dir, "io.bfq.weight", int(blkio["weight"]))
            elif os.path.exists(os.path.join(self.dir, "io.weight")):
                fs.write(self.dir, "io.weight", blkio_weight_to_io_weight(int(blkio["weight"])))
            else:
                fs.warn("io weight not supported by the kernel's I/O scheduler; weight ignored")
        for device in blkio.get("weightDevice") or ():
            if device.get("weight") is None:
                continue
            name = "io.bfq.weight" if bfq else "io.weight"
            weight = int(device["weight"]) if bfq else blkio_weight_to_io_weight(int(device["weight"]))
            fs.write(self.dir, name, f"{device['major']}:{device['minor']} {weight}")
        for key, field in (
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        ):
            for device in blkio.get(key) or ():
                fs.write(self.dir, "io.max", f"{device['major']}:{device['minor']} {field}={device['rate']}")

    # ---------------------------------------------------------------- figures

    def oom_events_file(self) -> str | None:
        return os.path.join(self.dir, "memory.events")

    def oom_kill_count(self) -> int:
        return fs.read_keyed(self.dir, "memory.events").get("oom_kill", 0)

    def stats(self) -> dict[str, Any]:
        cpu = fs.read_keyed(self.dir, "cpu.stat")
        io_bytes: list[dict[str, Any]] = []
        io_ops: list[dict[str, Any]] = []
        try:
            io_text = fs.read(self.dir, "io.stat")
        except OSError:
            io_text = ""
        for line in io_text.splitlines():
            device, *pairs = line.split()
            major, minor = (int(x) for x in device.split(":"))
            values = dict(p.split("=", 1) for p in pairs if "=" in p)
            for op, bytes_key, ios_key in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios")):
                io_bytes.append(
                    {"major": major, "minor": minor, "op": op, "value": int(values.get(bytes_key, 0))}
                )
                io_ops.append(
                    {"major": major, "minor": minor, "op": op, "value": int(values.get(ios_key, 0))}
                )
        return {
            "cpu": {
                "usage_total_ns": cpu.get("usage_usec", 0) * 1000,
                "usage_percpu_ns": [],
                "user_ns": cpu.get("user_usec", 0) * 1000,
                "system_ns": cpu.get("system_usec", 0) * 1000,
                "throttling": {
                    "periods": cpu.get("nr_periods", 0),
                    "throttled_periods": cpu.get("nr_throttled", 0),
                    "throttled_time_ns": cpu.get("throttled_usec", 0) * 1000,
                },
            },
            "memory": {
                "usage": fs.read_int(self.dir, "memory.current"),
                "max_usage": fs.read_int(self.dir, "memory.peak"),
                "limit": fs.read_int(self.dir, "memory.max"),
                "failcnt": fs.read_keyed(self.dir, "memory.events").get("max", 0),
                "stats": fs.read_keyed(self.dir, "memory.stat"),
            },
            "pids": {
                "current": fs.read_int(self.dir, "pids.current"),
                "limit": fs.read_int(self.dir, "pids.max"),
            },
            "blkio": {"io_service_bytes_recursive": io_bytes, "io_serviced_recursive": io_ops},
        }
