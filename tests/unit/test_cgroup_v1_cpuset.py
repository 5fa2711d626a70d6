"""A v1 cpuset level is filled from its parent, and never from a parent that another create made again and has
not filled yet (the race `tests/runtime/test_cgroups_live.py` churns for): that copy would leave the container's
cpuset empty, which refuses every task. cgroupfs is played by a plain directory whose mkdir makes the cpuset
files empty, as the kernel does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.runtime.cgroups import v1

REAL_MKDIR = os.mkdir


def _fake_cgroupfs(monkeypatch: pytest.MonkeyPatch, on_mkdir: dict[str, object]) -> None:
    def mkdir(path: str, mode: int = 0o777) -> None:
        REAL_MKDIR(path, mode)
        for name in ("cpuset.cpus", "cpuset.mems"):
            Path(path, name).write_text("\n")
        hook = on_mkdir.pop(os.path.basename(path), None)
        if callable(hook):
            hook()

    monkeypatch.setattr(v1.os, "mkdir", mkdir)


def test_level_filled_from_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cpuset"
    root.mkdir()
    (root / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset.mems").write_text("0\n")
    _fake_cgroupfs(monkeypatch, {})
    v1.V1Cgroup("/top/c0", {str(root): ["cpuset"]}).create()
    assert (root / "top" / "c0" / "cpuset.cpus").read_text().strip() == "0-1"
    assert (root / "top" / "cpuset.mems").read_text().strip() == "0"


def test_parent_made_again_meanwhile_is_filled_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cpuset"
    root.mkdir()
    (root / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset.mems").write_text("0\n")

    def parent_recreated_unfilled() -> None:  # another destroy removed "top", another create made it again
        for name in ("cpuset.cpus", "cpuset.mems"):
            (root / "top" / name).write_text("\n")

    _fake_cgroupfs(monkeypatch, {"c0": parent_recreated_unfilled})
    v1.V1Cgroup("/top/c0", {str(root): ["cpuset"]}).create()
    assert (root / "top" / "c0" / "cpuset.cpus").read_text().strip() == "0-1"
    assert (root / "top" / "c0" / "cpuset.mems").read_text().strip() == "0"
