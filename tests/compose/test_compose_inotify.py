"""The inotify wrapper compose watch stands on: real kernel events on a real tree, no polling."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.compose.inotify import TreeWatcher


def test_changes_new_directories_and_quiet(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.txt").write_text("one")
    with TreeWatcher([str(root)], quiet=0.05) as w:
        assert w.changes(timeout=0.2) == []  # nothing happened: nothing reported
        (root / "a.txt").write_text("two")
        assert w.changes(timeout=2) == [str(root / "a.txt")]  # a burst of events, reported once
        (root / "sub" / "deep").mkdir(parents=True)
        (root / "sub" / "deep" / "b.txt").write_text("b")
        got = w.changes(timeout=2)
        assert str(root / "sub" / "deep" / "b.txt") in got  # found by the walk or by its own event
        (root / "sub" / "deep" / "b.txt").write_text("bb")  # the new directory is watched too
        assert str(root / "sub" / "deep" / "b.txt") in w.changes(timeout=2)
        os.rename(root / "a.txt", root / "c.txt")
        assert set(w.changes(timeout=2)) == {str(root / "a.txt"), str(root / "c.txt")}
        (root / "c.txt").unlink()
        assert w.changes(timeout=2) == [str(root / "c.txt")]


def test_a_single_file_is_watched_through_its_directory(tmp_path: Path) -> None:
    f = tmp_path / "conf.ini"
    f.write_text("x=1")
    with TreeWatcher([str(f)], quiet=0.05) as w:
        tmp = tmp_path / ".conf.ini.swp"
        tmp.write_text("x=2")
        os.replace(tmp, f)  # how editors save
        assert str(f) in w.changes(timeout=2)
