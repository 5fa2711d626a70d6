"""Per-container directories are made where ext4 has no freshly deleted inodes to scan past.

Without a journal, ext4 skips every free inode of a group deleted in the last seconds, one buffer lookup each
(util/placement.py). Removing containers frees their state, writable layer and runtime state in a few groups,
and the next starts created all their files there: ~6 ms of kernel time per start, measured with perf. The
directories that hold one subdirectory per container are therefore hierarchy tops, so each container's
directory lands in a lightly used group.
"""

from __future__ import annotations

import os

import pytest

from dockyard.util.placement import topdir_flag
from helpers.daemon import TestDaemon
from helpers.hostprobe import takes_inode_flags

pytestmark = pytest.mark.dockyard_only("where dockyard's data root keeps per-container state")




def test_per_container_roots_spread_new_directories(daemon: TestDaemon, busybox_image: str) -> None:
    if not takes_inode_flags(daemon.data_root):
        pytest.skip("the data root's filesystem has no inode flags (tmpfs, overlay)")
    status, _h, _b = daemon.api("POST", "/containers/create?name=placed", {"Image": busybox_image,
                                                                           "Cmd": ["sleep", "30"]})
    assert status == 201
    try:
        assert daemon.api("POST", "/containers/placed/start")[0] == 204
        for sub in ("containers", "snapshots", os.path.join("runtime", "dockyard"), "layers"):
            assert topdir_flag(os.path.join(daemon.data_root, sub)), sub
    finally:
        daemon.api("DELETE", "/containers/placed?force=1")
