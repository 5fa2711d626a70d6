"""cgroup2 `favordynmods`: finding the mount and keeping its other options."""

from __future__ import annotations

from dockyard.runtime.cgroups.tuning import cgroup2_mount, favor_dynamic_modifications

HYBRID = """\
35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
37 35 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
"""
UNIFIED = "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
ELSEWHERE = "40 24 0:40 / /mnt/cg rw shared:4 - cgroup2 cgroup2 rw\n"


def test_finds_the_hosts_cgroup2_mount_with_its_options() -> None:
    assert cgroup2_mount(HYBRID) == ("/sys/fs/cgroup/unified", ["rw", "nsdelegate"])
    assert cgroup2_mount(UNIFIED) == ("/sys/fs/cgroup", ["rw", "nsdelegate", "memory_recursiveprot"])
    assert cgroup2_mount(ELSEWHERE) is None


def test_turning_it_on_keeps_the_other_options() -> None:
    with open("/proc/self/mountinfo") as f:
        before = cgroup2_mount(f.read())
    result = favor_dynamic_modifications()
    with open("/proc/self/mountinfo") as f:
        after = cgroup2_mount(f.read())
    if before is None:
        assert result == "no cgroup2 hierarchy"
        return
    assert after is not None
    if "not available" in result:
        assert after[1] == before[1]
    else:
        assert "favordynmods" in after[1]
        assert set(before[1]) - {"favordynmods"} <= set(after[1])
