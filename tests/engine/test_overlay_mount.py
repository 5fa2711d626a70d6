"""The container overlay mount: mount(2) with absolute lower paths, /usr/bin/mount for images too deep for a page."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from dockyard.errors import SystemError_
from dockyard.storage.snapshots import _mounted, is_mountpoint, mount_overlay, unmount


@pytest.fixture
def tree() -> Iterator[str]:
    """A scratch dir whose mounts are all undone, even when the test fails."""
    d = tempfile.mkdtemp(prefix="dyt-ovl", dir="/tmp")
    try:
        yield d
    finally:
        for dirpath, dirnames, _files in os.walk(d):
            for name in dirnames:
                p = os.path.join(dirpath, name)
                if is_mountpoint(p):
                    unmount(p)
        shutil.rmtree(d, ignore_errors=True)


def _layers(root: str, count: int, link_len: int) -> list[str]:
    """``count`` lower dirs, each one file, reachable through ``l/<link>`` symlinks; top layer first."""
    os.makedirs(os.path.join(root, "l"))
    links = []
    for i in range(count):
        diff = os.path.join(root, f"layer{i}", "diff")
        os.makedirs(diff)
        with open(os.path.join(diff, f"f{i}"), "w") as f:
            f.write(str(i))
        with open(os.path.join(diff, "which"), "w") as f:
            f.write(str(i))
        link = f"{i:0{link_len}d}"
        os.symlink(f"../layer{i}/diff", os.path.join(root, "l", link))
        links.append(f"l/{link}")
    return links[::-1]


def _dirs(base: str) -> tuple[str, str, str]:
    upper, work, merged = (os.path.join(base, n) for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        os.makedirs(d)
    return upper, work, merged


def test_shallow_image_mounts_with_the_syscall(tree: str) -> None:
    layers = os.path.join(tree, "layers")
    lowers = _layers(layers, 3, 26)
    upper, work, merged = _dirs(os.path.join(tree, "snap"))
    cwd = os.getcwd()
    mount_overlay(lowers, upper, work, merged, layers)
    try:
        assert os.getcwd() == cwd
        assert is_mountpoint(merged) and _mounted(merged)
        assert sorted(os.listdir(merged)) == ["f0", "f1", "f2", "which"]
        with open(os.path.join(merged, "which")) as f:
            assert f.read() == "2"  # the first lower dir is the top layer
        with open(os.path.join(merged, "new"), "w") as f:
            f.write("x")
        assert os.listdir(upper) == ["new"]
    finally:
        unmount(merged)
    assert not is_mountpoint(merged) and not _mounted(merged)
    assert not _mounted(os.path.join(tree, "snap", "gone"))


def test_deep_image_whose_absolute_paths_exceed_a_page_still_mounts(tree: str) -> None:
    # a long layers dir makes absolute lower paths overflow the page; the short relative names still fit
    layers = os.path.join(tree, "x" * 200, "layers")
    lowers = _layers(layers, 120, 26)
    assert len(":".join(os.path.join(layers, low) for low in lowers)) > 4096
    assert len(":".join(lowers)) < 4000
    upper, work, merged = _dirs(os.path.join(tree, "snap"))
    mount_overlay(lowers, upper, work, merged, layers)
    try:
        assert is_mountpoint(merged)
        assert len(os.listdir(merged)) == 121
        with open(os.path.join(merged, "which")) as f:
            assert f.read() == "119"
    finally:
        unmount(merged)


def test_mount_failure_names_the_reason(tree: str) -> None:
    upper, work, merged = _dirs(os.path.join(tree, "snap"))
    with pytest.raises(SystemError_, match="error mounting the container's filesystem: .*No such file"):
        mount_overlay(["l/missing"], upper, work, merged, os.path.join(tree, "nolayers"))
    assert not is_mountpoint(merged)


def test_trashed_tree_is_gone_at_once_and_deleted_soon(tree: str) -> None:
    from dockyard.storage import trash

    victim = os.path.join(tree, "root", "containers", "abc")
    os.makedirs(os.path.join(victim, "sub"))
    with open(os.path.join(victim, "sub", "f"), "w") as f:
        f.write("x")
    trash_dir = os.path.join(tree, "root", "trash")
    trash.remove_tree(victim, trash_dir)
    assert not os.path.exists(victim)
    assert trash.drain(10)
    assert os.listdir(trash_dir) == []
    trash.remove_tree(victim, trash_dir)  # already gone: nothing to do


def test_trash_left_by_an_earlier_daemon_is_emptied(tree: str) -> None:
    from dockyard.storage import trash

    trash_dir = os.path.join(tree, "root2", "trash")
    os.makedirs(os.path.join(trash_dir, "leftover.1234", "deep"))
    victim = os.path.join(tree, "root2", "x")
    os.makedirs(victim)
    trash.remove_tree(victim, trash_dir)
    assert trash.drain(10)
    assert os.listdir(trash_dir) == []
