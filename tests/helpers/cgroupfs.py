"""Reading a container's cgroup limits on whichever cgroup layout the host has (v1/hybrid or pure v2).

Tests assert the documented effect of a limit; the file that holds it differs between the two layouts, so the
test names the limit and this module finds the file and translates the value to the v1 spelling.
"""

from __future__ import annotations

import os

from dockyard.runtime import cgroups
from dockyard.runtime.cgroups.v2 import shares_to_weight

ROOT = "/sys/fs/cgroup"

# limit -> (v1 controller, v1 file, v2 file)
_FILES = {
    "memory": ("memory", "memory.limit_in_bytes", "memory.max"),
    "memory_reservation": ("memory", "memory.soft_limit_in_bytes", "memory.low"),
    "pids": ("pids", "pids.max", "pids.max"),
    "cpu_shares": ("cpu", "cpu.shares", "cpu.weight"),
    "cpu_quota": ("cpu", "cpu.cfs_quota_us", "cpu.max"),
    "cpu_period": ("cpu", "cpu.cfs_period_us", "cpu.max"),
}


def unified() -> bool:
    return cgroups.is_unified()


def directory(path: str, controller: str = "memory") -> str:
    """The directory of cgroup ``path`` (from the hierarchy root) for ``controller``'s limits."""
    rel = path.strip("/")
    return os.path.join(ROOT, rel) if unified() else os.path.join(ROOT, controller, rel)


def read_limit(path: str, limit: str) -> str:
    """The value of ``limit`` for the cgroup at ``path``, in cgroup v1's terms (cpu.weight read back as
    the shares it encodes is not possible, so cpu_shares on v2 returns the weight the shares map to)."""
    controller, v1_file, v2_file = _FILES[limit]
    with open(os.path.join(directory(path, controller), v2_file if unified() else v1_file)) as f:
        value = f.read().strip()
    if not unified():
        return value
    if limit == "cpu_quota":
        quota = value.split()[0]
        return "-1" if quota == "max" else quota
    if limit == "cpu_period":
        return value.split()[1]
    return value


def expected_cpu_shares(shares: int) -> str:
    """What read_limit(…, "cpu_shares") shows for ``shares`` on this host."""
    return str(shares_to_weight(shares)) if unified() else str(shares)
