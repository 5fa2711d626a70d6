"""Pure parts of the cgroup drivers: mount parsing, path layout, value conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.runtime import cgroups
from dockyard.runtime.cgroups import fs, v2
from dockyard.runtime.cgroups.v1 import V1Cgroup, parse_blkio_entries, parse_v1_mounts

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_parse_v1_mounts() -> None:
    assert parse_v1_mounts(MOUNTINFO) == {
        "/sys/fs/cgroup/cpu,cpuacct": ["cpu", "cpuacct"],
        "/sys/fs/cgroup/cpuset": ["cpuset"],
        "/sys/fs/cgroup/memory": ["memory"],
        "/sys/fs/cgroup/systemd": ["name=systemd"],
    }


def test_v1_layout_and_mount_sources() -> None:
    cg = V1Cgroup("dockyard/abc/", parse_v1_mounts(MOUNTINFO))
    assert cg.path == "/dockyard/abc"
    assert cg.mount_sources() == {
        "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/dockyard/abc",
        "cpuset": "/sys/fs/cgroup/cpuset/dockyard/abc",
        "memory": "/sys/fs/cgroup/memory/dockyard/abc",
        "systemd": "/sys/fs/cgroup/systemd/dockyard/abc",
    }


def test_v1_missing_controller_is_a_clear_error() -> None:
    cg = V1Cgroup("/dockyard/abc", parse_v1_mounts(MOUNTINFO))
    with pytest.raises(cgroups.CgroupError, match="pids cgroup controller is not mounted"):
        cg.apply({"pids": {"limit": 10}})
    with pytest.raises(cgroups.CgroupError, match="hugetlb"):
        cg.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]})
    with pytest.raises(cgroups.CgroupError, match="cannot use unified on cgroup v1"):
        cg.apply({"unified": {"memory.high": "1"}})


def test_open_cgroup_paths() -> None:
    assert cgroups.open_cgroup(None, "abc").path == "/dockyard/abc"
    assert cgroups.open_cgroup("/dockyard/x", "abc").path == "/dockyard/x"
    assert cgroups.open_cgroup("a//b/../c", "abc").path == "/a/c"
    with pytest.raises(cgroups.CgroupError, match="root cgroup"):
        cgroups.open_cgroup("/", "abc")
    with pytest.raises(cgroups.CgroupError, match="systemd"):
        cgroups.open_cgroup("system.slice:docker:abc", "abc")


def test_open_cgroup_picks_v1_on_hybrid_host() -> None:
    with open("/proc/self/mountinfo") as f:
        unified_root = any(
            line.split(" - ")[1].startswith("cgroup2") and line.split()[4] == "/sys/fs/cgroup" for line in f
        )
    cg = cgroups.open_cgroup(None, "abc")
    assert isinstance(cg, cgroups.V2Cgroup if unified_root else cgroups.V1Cgroup)


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ({"allow": False, "access": "rwm"}, "a *:* rwm"),
        ({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}, "c 1:3 rwm"),
        ({"allow": True, "type": "c", "major": 136, "access": "rwm"}, "c 136:* rwm"),
        ({"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"}, "b *:* m"),
    ],
)
def test_parse_device_rule(rule: dict[str, object], text: str) -> None:
    assert fs.parse_device_rule(rule) == text


def test_parse_device_rule_rejects_garbage() -> None:
    with pytest.raises(cgroups.CgroupError):
        fs.parse_device_rule({"type": "x"})
    with pytest.raises(cgroups.CgroupError):
        fs.parse_device_rule({"type": "c", "access": "rwx"})


def test_v2_conversions() -> None:
    assert v2.shares_to_weight(2) == 1
    assert v2.shares_to_weight(1024) == 39
    assert v2.shares_to_weight(262144) == 10000
    assert v2.blkio_weight_to_io_weight(10) == 1
    assert v2.blkio_weight_to_io_weight(1000) == 10000
    assert v2.swap_to_v2(200, 100) == 100
    assert v2.swap_to_v2(-1, 100) == -1
    with pytest.raises(cgroups.CgroupError):
        v2.swap_to_v2(100, 200)
    with pytest.raises(cgroups.CgroupError):
        v2.swap_to_v2(100, 0)


def test_v2_device_rules_default_vs_custom() -> None:
    docker_default = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    ]
    assert not v2.devices_need_ebpf(docker_default)
    assert not v2.devices_need_ebpf([{"allow": True, "access": "rwm"}])
    assert v2.devices_need_ebpf(
        [*docker_default, {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]
    )
    assert v2.devices_need_ebpf([{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])


def test_file_parsers(tmp_path: Path) -> None:
    (tmp_path / "memory.stat").write_text("cache 4096\nrss 8192\nbogus line here\n")
    (tmp_path / "pids.max").write_text("max\n")
    (tmp_path / "blk").write_text("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n")
    assert fs.read_keyed(str(tmp_path), "memory.stat") == {"cache": 4096, "rss": 8192}
    assert fs.read_keyed(str(tmp_path), "missing") == {}
    assert fs.read_int(str(tmp_path), "pids.max") == 0
    assert parse_blkio_entries(str(tmp_path), "blk") == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 0},
        {"major": 8, "minor": 0, "op": "Total", "value": 4096},
    ]
    assert parse_blkio_entries(str(tmp_path), "missing") is None
