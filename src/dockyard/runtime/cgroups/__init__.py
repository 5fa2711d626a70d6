"""Container cgroups on v1 (one directory per hierarchy) or v2 (unified), chosen by the host.

``open_cgroup`` picks the driver: v2 only when /sys/fs/cgroup itself is a
cgroup2 mount, v1 otherwise (hybrid hosts keep their resource controllers on
v1).  ``stats()`` returns::

    {"cpu": {"usage_total_ns", "usage_percpu_ns", "user_ns", "system_ns",
             "throttling": {"periods", "throttled_periods", "throttled_time_ns"}},
     "memory": {"usage", "max_usage", "limit", "failcnt", "stats": {memory.stat}},
     "pids": {"current", "limit"},          # limit 0 = unlimited, as in Docker's API
     "blkio": {"io_service_bytes_recursive": [{"major", "minor", "op", "value"}], ...}}
"""

from __future__ import annotations

import functools
import os

from dockyard.runtime.cgroups.base import Cgroup
from dockyard.runtime.cgroups.fs import CgroupError
from dockyard.runtime.cgroups.v1 import V1Cgroup, parse_v1_mounts
from dockyard.runtime.cgroups.v2 import V2Cgroup

__all__ = ["Cgroup", "CgroupError", "V1Cgroup", "V2Cgroup", "open_cgroup", "is_unified", "default_path"]

CGROUP_ROOT = "/sys/fs/cgroup"
_CGROUP2_SUPER_MAGIC = 0x63677270


def default_path(cid: str) -> str:
    """Where a container's cgroup goes when the config names none."""
    return f"/dockyard/{cid}"


@functools.cache
def is_unified() -> bool:
    """True when /sys/fs/cgroup is itself cgroup2 (pure v2 host)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            if before.split()[4] == CGROUP_ROOT:
                return after.split()[0] == "cgroup2"
    return False


@functools.cache
def _v1_mounts() -> dict[str, list[str]]:
    with open("/proc/self/mountinfo") as f:
        return parse_v1_mounts(f.read())


@functools.cache
def _hybrid_unified_root() -> str | None:
    """The cgroup2 mount of a hybrid host (/sys/fs/cgroup/unified), if there is one."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            mount_point = before.split()[4]
            if after.split()[0] == "cgroup2" and mount_point.startswith(CGROUP_ROOT + "/"):
                return mount_point
    return None


def open_cgroup(cgroups_path: str | None, cid: str) -> Cgroup:
    """The cgroup for a container: ``cgroups_path`` (OCI linux.cgroupsPath) or /dockyard/<cid>.

    The path is taken from each hierarchy's root; systemd's ``slice:prefix:name``
    form is not supported.
    """
    path = cgroups_path or default_path(cid)
    if ":" in path and not path.startswith("/"):
        raise CgroupError(f"systemd cgroup paths are not supported: {path!r}")
    path = "/" + os.path.normpath("/" + path).strip("/")
    if path == "/":
        raise CgroupError("refusing to use the root cgroup for a container")
    if is_unified():
        return V2Cgroup(path, CGROUP_ROOT)
    return V1Cgroup(path, _v1_mounts(), _hybrid_unified_root())
