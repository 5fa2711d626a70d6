"""What every cgroup driver offers; destroy's kill-and-wait logic is shared."""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod

from dockyard.runtime.cgroups import fs
from dockyard.runtime.cgroups.fs import CgroupError

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from typing import Any


class Cgroup(ABC):
    """One container's cgroup, across however many hierarchies the host mounts."""

    path: str  # the cgroups path asked for, e.g. "/dockyard/<cid>"

    @abstractmethod
    def create(self) -> None:
        """Make the cgroup directories (idempotent)."""

    @abstractmethod
    def apply(self, resources: dict[str, Any]) -> None:
        """Write the OCI ``linux.resources`` limits; only what is set is written."""

    def update(self, resources: dict[str, Any]) -> None:
        """Change limits of a running container (same writes as ``apply``)."""
        self.apply(resources)

    @abstractmethod
    def add_pid(self, pid: int) -> None:
        """Move a process (and its future children) into the cgroup."""

    def join_self(self) -> None:
        """Move the calling process in (``exec`` does this before entering namespaces)."""
        self.add_pid(os.getpid())

    @abstractmethod
    def freeze(self, timeout: float = 10.0) -> None:
        """Stop every task and wait until the kernel reports the cgroup frozen (else thaw and raise)."""

    @abstractmethod
    def thaw(self) -> None:
        """Let frozen tasks run again."""

    @abstractmethod
    def state(self) -> str:
        """``"paused"`` when frozen (or freezing), else ``"running"``."""

    @abstractmethod
    def pids(self) -> list[int]:
        """Pids in the cgroup and its sub-cgroups."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Usage figures shaped for Docker's stats API (see the package docstring)."""

    @abstractmethod
    def oom_kill_count(self) -> int:
        """How many processes the OOM killer has killed in this cgroup."""

    @abstractmethod
    def oom_events_file(self) -> str | None:
        """The file whose ``oom_kill N`` line counts OOM kills (read by the native monitor at exit)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether the cgroup directory is there."""

    @abstractmethod
    def mount_sources(self) -> dict[str, str]:
        """Host directory per hierarchy, for the container's ``cgroup`` mount."""

    @abstractmethod
    def _directories(self) -> list[tuple[str, str]]:
        """(hierarchy mount point, container directory) pairs, for removal."""

    def _kill_all(self) -> None:
        """SIGKILL every task while frozen, so nothing forks in between."""
        frozen = False
        try:
            # Short: a task waiting in the kernel (OOM with the killer disabled, D state) never
            # freezes, and SIGKILL reaches it anyway.
            self.freeze(timeout=0.5)
            frozen = True
        except (CgroupError, OSError):
            pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if frozen:
            self.thaw()

    def destroy(self, kill: bool = False, timeout: float = 10.0) -> None:
        """Remove the cgroup everywhere, killing its tasks first when ``kill``; idempotent.

        Without ``kill`` the tasks must be gone already (or leave within
        ``timeout``); the shared parent directories go too once unused.
        """
        if self.exists():
            if kill:
                self._kill_all()
                if not fs.wait_until(lambda: not self.pids(), timeout):
                    self._kill_all()  # a task forked past the first round; try once more
            if not fs.wait_until(lambda: not self.pids(), timeout if kill else min(timeout, 2.0)):
                raise CgroupError(f"cgroup {self.path} still has processes: {self.pids()}")
        for mount, directory in self._directories():
            fs.remove_tree(directory)
            fs.remove_empty_parents(directory, mount)
