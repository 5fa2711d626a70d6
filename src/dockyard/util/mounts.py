"""Whether a path is a mount point, from /proc/self/mountinfo (shared by the snapshotter, netns and cp)."""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo writes space, tab, newline and backslash as \ooo


def is_mountpoint(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4]) == real:
                return True
    return False
