"""The layer store asks the filesystem to place each new layer directory in a block group of its own."""

from __future__ import annotations

import os
import subprocess

import pytest

from dockyard.storage.blobs import BlobStore
from dockyard.storage.db import StateDB
from dockyard.storage.layers import LayerStore
from dockyard.util.placement import spread_new_dirs, topdir_flag
from helpers.hostprobe import takes_inode_flags


def test_layers_dir_is_a_hierarchy_top(tmp_path: str) -> None:
    root = str(tmp_path)
    if not takes_inode_flags(root):
        pytest.skip("this filesystem has no inode flags (tmpfs, overlay)")
    db = StateDB(os.path.join(root, "state.db"))
    try:
        store = LayerStore(db, root, BlobStore(root))
        assert topdir_flag(store.dir)
        assert "T" in subprocess.run(["lsattr", "-d", store.dir], capture_output=True, text=True,
                                     check=True).stdout.split()[0]
        LayerStore(db, root, BlobStore(root))  # a restart finds the flag set and keeps it
        assert topdir_flag(store.dir)
    finally:
        db.close()


def test_a_filesystem_without_flags_is_fine(tmp_path: str) -> None:
    shm = "/dev/shm"
    if not os.path.isdir(shm):
        pytest.skip("no /dev/shm")
    d = os.path.join(shm, f"dyplace-{os.getpid()}")
    os.mkdir(d)
    try:
        assert spread_new_dirs(d) is False
        assert topdir_flag(d) is False
    finally:
        os.rmdir(d)
