"""Small questions tests ask the host: a free loopback port to publish on, a process's resident memory, whether a
filesystem keeps inode flags."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now (the kernel's pick: never a fixed port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def takes_inode_flags(directory: str) -> bool:
    """Whether the filesystem of ``directory`` keeps inode flags such as ext4's top-of-hierarchy one (tmpfs and
    overlay refuse them)."""
    from dockyard.util.placement import spread_new_dirs

    probe = os.path.join(directory, f".flags-probe-{os.getpid()}")
    os.mkdir(probe)
    try:
        return spread_new_dirs(probe)
    finally:
        os.rmdir(probe)
