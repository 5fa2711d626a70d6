"""Host tuning that makes container start cheaper: cgroup2's `favordynmods` mount option.

Moving a task into a cgroup (any hierarchy, v1 included) takes the kernel's global
cgroup_threadgroup_rwsem for writing; after a quiet spell that first write waits for an RCU
grace period, ~10–15 ms here — on every `run` that comes alone. `favordynmods` keeps the
semaphore in the mode where writers do not wait, at a small cost to fork and exit. The
option lives on the cgroup2 superblock and is global; the daemon turns it on at start-up
(daemon.json `cgroup-favordynmods`, default true). Every other option of the mount is kept.
"""

from __future__ import annotations

from dockyard.sys import linux

_OPTION = "favordynmods"


def cgroup2_mount(mountinfo: str) -> tuple[str, list[str]] | None:
    """(mount point, super options) of the host's cgroup2 hierarchy, if it has one."""
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields = after.split()
        if len(fields) >= 3 and fields[0] == "cgroup2":
            point = before.split()[4]
            if point == "/sys/fs/cgroup" or point.startswith("/sys/fs/cgroup/"):
                return point, fields[2].split(",")
    return None


def favor_dynamic_modifications() -> str:
    """Turn `favordynmods` on; returns what happened, for the daemon's log."""
    with open("/proc/self/mountinfo") as f:
        found = cgroup2_mount(f.read())
    if found is None:
        return "no cgroup2 hierarchy"
    point, options = found
    if _OPTION in options:
        return f"{point}: {_OPTION} already on"
    keep = [o for o in options if o not in ("rw", "ro")]
    data = ",".join([*keep, _OPTION])
    try:
        linux.mount(None, point, None, linux.MS_REMOUNT, data)
    except linux.SyscallError as exc:
        return f"{point}: {_OPTION} not available: {exc.reason}"
    return f"{point}: {_OPTION} turned on"
