"""Exclusive claims on what one daemon owns on the host: its data root, its resource prefix, its bridge.

Two daemons sharing any of these would clobber each other (one's reconcile deleting the other's links, one's
clean stop deleting the chains the other's published ports jump through), so a daemon takes a lock on each at
start-up and refuses to start when another daemon holds one, naming the holder.

The locks are POSIX record locks (``fcntl.lockf``) on files opened close-on-exec: they belong to the daemon
process alone, so neither the shim launcher nor the shims it forks inherit them, a ``kill -9`` of the daemon
releases them at once, and the live-restored shims never keep a restarted daemon out.
"""

from __future__ import annotations

import errno
import fcntl
import os

from dockyard.daemon.config import ConfigError

LOCK_DIR = "/run/lock/dockyard"


class HostLocks:
    """The set of locks one daemon holds for its whole life (released by ``release`` or the process's end)."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def claim(self, path: str, what: str, hint: str) -> None:
        """Lock ``path`` for this process, else raise ConfigError naming ``what`` and the holder's pid."""
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise ConfigError(f"cannot lock {path}: {e.strerror}") from None
            by = f" (pid {holder})" if holder else ""
            raise ConfigError(f"{what} is in use by another dockyard daemon{by}: {hint}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fds.append(fd)

    def release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def claim_daemon(data_root: str, prefix: str, bridge: str, lock_dir: str = LOCK_DIR) -> HostLocks:
    """The three claims of a daemon: its data root, its resource prefix and its default bridge."""
    locks = HostLocks()
    try:
        locks.claim(os.path.join(data_root, "engine.lock"), f"data root {data_root}",
                    "stop it, or give this daemon another --data-root")
        locks.claim(os.path.join(lock_dir, f"prefix-{prefix}.lock"), f"resource prefix {prefix!r}",
                    "give this daemon another --resource-prefix")
        locks.claim(os.path.join(lock_dir, f"bridge-{bridge}.lock"), f"bridge {bridge}",
                    "give this daemon another --bridge")
    except BaseException:
        locks.release()
        raise
    return locks
