"""A recording fake of dockyard.sys's backend: every privileged call is recorded and succeeds (or fails with
the errno a test asks for), so mount/namespace logic runs without root, in microseconds.

    with fake_syscalls() as sysc:
        rootfs.prepare_root(root, None)
    assert sysc.mounts() == [(None, "/", None, MS_REC | MS_PRIVATE, None), ...]
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dockyard.sys import linux


def _s(value: bytes | None) -> str | None:
    return None if value is None else os.fsdecode(value)


class RecordingSyscalls:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        # (call name, path or None) -> [errno to fail with, calls left to fail]; the path None matches any
        self.failures: dict[tuple[str, str | None], list[int]] = {}
        self.prctl_answers: dict[tuple[int, int], int] = {}

    def fail(self, call: str, path: str | None = None, err: int = errno_mod.EPERM, times: int = 1 << 30) -> None:
        """Make ``call`` (on ``path``, or on any) fail with ``err``, the next ``times`` times."""
        self.failures[(call, path)] = [err, times]

    def _answer(self, call: str, path: str | None, *args: Any) -> int:
        self.calls.append((call, path, *args))
        rule = self.failures.get((call, path)) or self.failures.get((call, None))
        if rule is None or rule[1] <= 0:
            return 0
        rule[1] -= 1
        return -rule[0]

    # -- the backend interface (dockyard.sys.linux.Syscalls) --------------------------------------
    def mount(self, source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
              data: bytes | None) -> int:
        return self._answer("mount", _s(target), _s(source), _s(fstype), flags, _s(data))

    def umount2(self, target: bytes, flags: int) -> int:
        return self._answer("umount2", _s(target), flags)

    def unshare(self, flags: int) -> int:
        return self._answer("unshare", None, flags)

    def setns(self, fd: int, nstype: int) -> int:
        return self._answer("setns", None, nstype)

    def pivot_root(self, new_root: bytes, put_old: bytes) -> int:
        return self._answer("pivot_root", _s(new_root), _s(put_old))

    def sethostname(self, name: bytes) -> int:
        return self._answer("sethostname", None, name.decode())

    def setdomainname(self, name: bytes) -> int:
        return self._answer("setdomainname", None, name.decode())

    def prctl(self, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
        rc = self._answer("prctl", None, option, arg2, arg3)
        return rc if rc < 0 else self.prctl_answers.get((option, arg2), 0)

    def capset(self, effective: int, permitted: int, inheritable: int) -> int:
        return self._answer("capset", None, effective, permitted, inheritable)

    def seccomp_set_filter(self, program: bytes, flags: int) -> int:
        return self._answer("seccomp", None, len(program), flags)

    # -- reading what happened --------------------------------------------------------------------
    def mounts(self) -> list[tuple[str | None, str, str | None, int, str | None]]:
        """(source, target, fstype, flags, data) of each mount call, in order."""
        return [(c[2], c[1], c[3], c[4], c[5]) for c in self.calls if c[0] == "mount"]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@contextmanager
def fake_syscalls() -> Iterator[RecordingSyscalls]:
    fake = RecordingSyscalls()
    previous = linux.use(fake)
    try:
        yield fake
    finally:
        linux.use(previous)
