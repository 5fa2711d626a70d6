"""Small file helpers shared by the v1 and v2 cgroup drivers.

Cgroup files are tiny pseudo-files; one open/write per value keeps container
start cheap, and every error names the file and value so a failed limit is
easy to read in ``docker run`` output.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator


class CgroupError(Exception):
    """A cgroup operation the kernel refused (the message names the file)."""


def write(directory: str, name: str, value: str | int) -> None:
    """Write one value to ``directory/name``; raise CgroupError naming both on failure."""
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupError(f"failed to open {path}: {exc.strerror}") from exc
    try:
        os.write(fd, str(value).encode())
    except OSError as exc:
        raise CgroupError(f"failed to write {value!s} to {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    """Whole contents of ``directory/name`` without the trailing newline."""
    with open(os.path.join(directory, name)) as f:
        return f.read().rstrip("\n")


def read_int(directory: str, name: str, default: int = 0) -> int:
    """Integer value of a single-number file; ``max`` and missing files give ``default``."""
    try:
        text = read(directory, name).strip()
    except OSError:
        return default
    if not text or text == "max":
        return default
    return int(text)


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events …) as a dict; {} if missing."""
    result: dict[str, int] = {}
    try:
        text = read(directory, name)
    except OSError:
        return result
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return result


def read_pids(directory: str) -> list[int]:
    """Every pid in ``directory`` and its sub-cgroups (containers may nest their own)."""
    pids: list[int] = []
    for current in walk_dirs(directory):
        try:
            text = read(current, "cgroup.procs")
        except OSError:
            continue
        pids.extend(int(line) for line in text.split())
    return pids


def walk_dirs(directory: str) -> Iterator[str]:
    """``directory`` then every sub-cgroup below it, parents before children."""
    if not os.path.isdir(directory):
        return
    yield directory
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_dirs(entry.path)


def remove_tree(directory: str, attempts: int = 50) -> None:
    """rmdir ``directory`` and its sub-cgroups, children first; absent is fine.

    A cgroup whose last task just exited can answer EBUSY for a moment, so
    each rmdir is retried briefly.
    """
    for current in reversed(list(walk_dirs(directory))):
        for attempt in range(attempts):
            try:
                os.rmdir(current)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == attempts - 1:
                    raise CgroupError(f"failed to remove cgroup {current}: {exc.strerror}") from exc
                time.sleep(0.002 * (attempt + 1))


def remove_empty_parents(directory: str, stop_at: str) -> None:
    """rmdir the parents of ``directory`` up to (not including) ``stop_at`` while they are unused."""
    parent = os.path.dirname(directory.rstrip("/"))
    stop = stop_at.rstrip("/")
    while parent.startswith(stop + "/") and parent != stop:
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)


def is_vanishing(exc: BaseException) -> bool:
    """Whether an error means a cgroup directory was removed under us (ENOENT, or ENODEV mid-removal)."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ENOENT, errno.ENODEV)


def makedirs(directory: str) -> None:
    """mkdir -p that tolerates a concurrent remove_empty_parents of a shared parent."""
    for _ in range(5):
        try:
            os.makedirs(directory, exist_ok=True)
            return
        except OSError as exc:
            if not is_vanishing(exc):
                raise
    os.makedirs(directory, exist_ok=True)


def parse_device_rule(rule: dict[str, object]) -> str:
    """OCI ``linux.resources.devices`` entry → the ``type major:minor access`` string v1 takes."""
    kind = str(rule.get("type") or "a")
    if kind not in ("a", "b", "c"):
        raise CgroupError(f"invalid device type {kind!r} in device rule")
    access = str(rule.get("access") or "rwm")
    if not access or set(access) - set("rwm"):
        raise CgroupError(f"invalid device access {access!r} in device rule")
    if kind == "a":
        return "a *:* " + access

    def number(value: object) -> str:
        if value is None or value == -1:
            return "*"
        return str(int(value))  # type: ignore[call-overload]

    return f"{kind} {number(rule.get('major'))}:{number(rule.get('minor'))} {access}"


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate()`` with a short growing sleep until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def warn(message: str) -> None:
    """Log a warning; `logging` is imported only here, off the container-start hot path."""
    import logging

    logging.getLogger("dockyard.runtime.cgroups").warning(message)
