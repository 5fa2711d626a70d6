"""Directory removal off the request path: rename into ``<data_root>/trash`` now, delete in the background.

Removing a container's state and snapshot dirs is a dozen unlinks on the host filesystem (~3 ms on ext4),
and `run --rm` waits for the removal. A rename inside the data root is one atomic syscall: the directory is
gone from its place at once, and one worker thread deletes the trash. Trash a crash left behind is emptied
when the next daemon opens the same trash dir (at start-up). Anything a rename cannot move (another filesystem) is
deleted in place as before.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading

_queue: queue.SimpleQueue[str] = queue.SimpleQueue()
_state = threading.Condition()  # guards the worker and the count of trash not yet deleted
_worker: threading.Thread | None = None
_pending = 0
_opened: set[str] = set()


def _work() -> None:
    global _pending
    try:  # yield the CPU to container starts (a thread keeps its own nice value on Linux)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except OSError:
        pass
    while True:
        path = _queue.get()
        shutil.rmtree(path, ignore_errors=True)
        with _state:
            _pending -= 1
            _state.notify_all()


def _enqueue(path: str) -> None:
    global _worker, _pending
    with _state:
        _pending += 1
        if _worker is None:
            _worker = threading.Thread(target=_work, name="dockyard-trash", daemon=True)
            _worker.start()
    _queue.put(path)


def trash_dir(data_root: str) -> str:
    """The data root's trash directory."""
    return os.path.join(data_root, "trash")


def open_trash(trash_dir: str) -> None:
    """Make the trash dir; the first time in this process, queue what an earlier run left in it."""
    with _state:
        if trash_dir in _opened:
            return
        os.makedirs(trash_dir, 0o700, exist_ok=True)
        for name in os.listdir(trash_dir):
            _enqueue(os.path.join(trash_dir, name))
        _opened.add(trash_dir)


def remove_tree(path: str, trash_dir: str) -> None:
    """Make ``path`` disappear now and free its space soon (``shutil.rmtree(path, ignore_errors=True)``)."""
    open_trash(trash_dir)
    dest = os.path.join(trash_dir, f"{os.path.basename(path.rstrip('/'))}.{os.urandom(4).hex()}")
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return
    except OSError:  # another filesystem, or not a directory: delete in place
        shutil.rmtree(path, ignore_errors=True)
        return
    _enqueue(dest)


def drain(timeout: float = 10.0) -> bool:
    """Wait until everything trashed so far is deleted; False if that took longer than ``timeout``."""
    with _state:
        return _state.wait_for(lambda: _pending == 0, timeout)
