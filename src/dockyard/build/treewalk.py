"""The deterministic walk of a directory tree the builder makes layers and checksums from: the root first, then
depth first with names sorted at each level, symlinks not followed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator


def walk_tree(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to ``root`` ("" for the root itself), disk path, lstat) for everything in the tree."""
    yield "", root, os.lstat(root)
    stack = [("", root)]
    while stack:
        rel, d = stack.pop()
        for name in sorted(os.listdir(d), reverse=True):
            full = os.path.join(d, name)
            r = f"{rel}/{name}" if rel else name
            st = os.lstat(full)
            yield r, full, st
            if stat.S_ISDIR(st.st_mode):
                stack.append((r, full))
