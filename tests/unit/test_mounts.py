"""is_mountpoint reads mountinfo's octal escapes (a space in a path is written \\040)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dockyard.util.mounts import is_mountpoint


def test_mount_point_with_a_space_in_its_path(tmp_path: Path) -> None:
    target = tmp_path / "a dir\\with odd name"
    target.mkdir()
    assert not is_mountpoint(str(target))
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)
    try:
        assert is_mountpoint(str(target))
        assert not is_mountpoint(str(tmp_path))
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert not is_mountpoint(str(target))


def test_diff_hides_mount_points_and_directories_made_only_for_them() -> None:
    from dockyard.storage.snapshots import _without_hidden

    changes = [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/hosts", "Kind": 1}, {"Path": "/mnt", "Kind": 1},
               {"Path": "/mnt/a", "Kind": 1}, {"Path": "/mnt/a/b", "Kind": 1}, {"Path": "/opt", "Kind": 0},
               {"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}]
    assert _without_hidden(changes, {"/etc/hosts", "/mnt/a/b"}) == [
        {"Path": "/opt", "Kind": 0}, {"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}]
    assert _without_hidden(changes, ()) == changes
