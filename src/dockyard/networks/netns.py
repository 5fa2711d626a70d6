"""Persistent network namespaces as bind-mounted nsfs files, and running code inside them.

A namespace is made before its container exists: a short-lived thread unshares
CLONE_NEWNET (which only moves that thread) and its ``/proc/self/task/<tid>/ns/net``
is bind-mounted onto ``<data_root>/netns/<cid>``. No fork, so the threaded daemon
stays safe. Work inside a namespace (netlink sockets, the DNS listeners) is done
the same way: a thread setns()es in, creates its sockets, and exits; sockets keep
the namespace they were created in.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from dockyard.sys import linux
from dockyard.sys.linux import CLONE_NEWNET, MNT_DETACH, MS_BIND, MS_MOVE, MS_PRIVATE
from dockyard.util.mounts import is_mountpoint

T = TypeVar("T")


def _mount(src: str, target: str, flags: int) -> None:
    linux.mount(src, target, None, flags)


def detach(path: str) -> None:
    """Lazily unmount ``path``; one that is not mounted (EINVAL) or gone (ENOENT) is fine."""
    try:
        linux.umount2(path, MNT_DETACH)
    except linux.SyscallError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise


def move(src: str, target: str) -> None:
    """Move the mount at ``src`` onto ``target`` (MS_MOVE)."""
    linux.mount(src, target, None, MS_MOVE)


def ensure_private_dir(path: str) -> None:
    """Make ``path`` its own private mount so netns bind mounts neither leak nor get pinned elsewhere."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not is_mountpoint(path):
        _mount(path, path, MS_BIND)
    _mount("none", path, MS_PRIVATE)


def release_private_dir(path: str) -> None:
    """Undo ``ensure_private_dir`` (tests; the daemon keeps it for live containers)."""
    if os.path.isdir(path) and is_mountpoint(path):
        detach(path)


def _in_thread(fn: Callable[[], T]) -> T:
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed back to the caller
            box["error"] = e

    t = threading.Thread(target=body, name="netns-worker", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def create(path: str) -> int:
    """Create a fresh netns pinned at ``path``; returns its inode (the namespace's identity)."""
    return create_with(path, lambda: os.stat(path).st_ino)


def create_with(path: str, inside: Callable[[], T]) -> T:
    """Create a fresh netns pinned at ``path`` and run ``inside`` in it on the same short-lived
    thread, so sockets the namespace needs (netlink, DNS) cost no second thread and setns."""
    with open(path, "x"):
        pass
    pinned = False

    def make() -> T:
        nonlocal pinned
        linux.unshare(CLONE_NEWNET)
        _mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, MS_BIND)
        pinned = True
        return inside()

    try:
        return _in_thread(make)
    except BaseException:
        if pinned:
            detach(path)
        os.unlink(path)
        raise


def remove(path: str) -> None:
    """Unpin and delete a netns file; idempotent."""
    if not os.path.exists(path) or os.path.isdir(path):
        return
    detach(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_pinned(path: str) -> bool:
    """True when ``path`` is a live nsfs bind mount (not an empty placeholder file)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev or is_mountpoint(path)
    except FileNotFoundError:
        return False


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread that has joined the namespace at ``path``."""
    def enter() -> T:
        fd = os.open(path, os.O_RDONLY)
        try:
            linux.setns(fd, CLONE_NEWNET)
        finally:
            os.close(fd)
        return fn()

    return _in_thread(enter)


def netns_inodes_in_use() -> set[int]:
    """Inodes of every network namespace some process is in (to tell live namespaces from stale)."""
    found: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            found.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
        except OSError:
            continue
    return found
