"""The native container monitor: where its binary is, built on first use from the C sources beside it.

The Python shim starts a container and then execs ``dockyard-monitor``, which
serves the init for the rest of its life in a fraction of a Python process's
memory.  The binary is built next to its sources (``runtime/native``) and
rebuilt whenever a source is newer, under a file lock so concurrent daemons
do not race.  ``python -m dockyard.runtime.shim.monitor`` builds it and prints the path.
"""

from __future__ import annotations

import fcntl
import os
import subprocess

NATIVE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native")
BINARY_NAME = "dockyard-monitor"
CFLAGS = ("-O2", "-Wall", "-Wextra")


def _sources() -> list[str]:
    return sorted(
        os.path.join(NATIVE_DIR, name) for name in os.listdir(NATIVE_DIR) if name.endswith((".c", ".h"))
    )


def _up_to_date(binary: str, sources: list[str]) -> bool:
    try:
        built = os.stat(binary).st_mtime_ns
    except FileNotFoundError:
        return False
    return all(os.stat(src).st_mtime_ns <= built for src in sources)


def _build(binary: str, sources: list[str]) -> None:
    tmp = f"{binary}.{os.getpid()}.tmp"
    compiler = os.environ.get("CC", "cc")
    cmd = [compiler, *CFLAGS, "-o", tmp, *(s for s in sources if s.endswith(".c"))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RuntimeError("cannot build dockyard-monitor: no C compiler (install gcc)") from None
    if proc.returncode != 0:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise RuntimeError(f"cannot build dockyard-monitor: {compiler} failed:\n{proc.stderr.strip()}")
    os.replace(tmp, binary)


def monitor_binary() -> str:
    """Path of a built, up-to-date dockyard-monitor; builds it if missing or older than a source."""
    binary = os.path.join(NATIVE_DIR, BINARY_NAME)
    sources = _sources()
    if _up_to_date(binary, sources):
        return binary
    lock_fd = os.open(os.path.join(NATIVE_DIR, ".build.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if not _up_to_date(binary, sources):  # another process may have built it while we waited
            _build(binary, sources)
    finally:
        os.close(lock_fd)
    return binary


if __name__ == "__main__":
    print(monitor_binary())
