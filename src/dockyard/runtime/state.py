"""The per-container state directory under the runtime root.

``<root>/<id>/state.json`` holds what later commands need (init pid and
its start time, bundle, cgroup path, poststop hooks); ``exec.fifo`` exists
from ``create`` until ``start``.  The status is never stored: it is derived
from whether the init still lives, like runc does, so a container whose
init died is "stopped" without anyone updating a file.
"""

from __future__ import annotations

import json
import os

from dockyard.runtime.errors import OCIRuntimeError

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/dockyard/runtime"
OCI_VERSION = "1.0.2"
STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"

_ID_PUNCTUATION = frozenset("_+-.")  # with letters and digits: what runc accepts


def check_id(cid: str) -> None:
    """Refuse ids that could escape the root or confuse the file layout."""
    if not cid or cid.startswith(".") or not all(c.isalnum() or c in _ID_PUNCTUATION for c in cid):
        raise OCIRuntimeError(f"invalid container id format: {cid}", "invalid")


def container_dir(root: str, cid: str) -> str:
    check_id(cid)
    return os.path.join(root, cid)


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of ``pid``, or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def write_state(root: str, cid: str, state: dict[str, Any]) -> None:
    """Write state.json atomically (tmp + rename) so readers never see half a file."""
    directory = container_dir(root, cid)
    tmp = os.path.join(directory, STATE_FILE + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(state))  # dumps: the C encoder; dump() streams through the Python one
    os.rename(tmp, os.path.join(directory, STATE_FILE))


def read_state(root: str, cid: str) -> dict[str, Any]:
    """Stored state of ``cid``; raises not_exist if there is no such container."""
    path = os.path.join(container_dir(root, cid), STATE_FILE)
    try:
        with open(path) as fh:
            data: dict[str, Any] = json.load(fh)
    except FileNotFoundError:
        raise OCIRuntimeError(f"container does not exist: {cid}", "not_exist") from None
    except ValueError:
        raise OCIRuntimeError(f"container {cid}: corrupt state file {path}", "other") from None
    return data


def init_alive(stored: dict[str, Any]) -> bool:
    """True if the recorded init pid still runs and is the same process (start time matches)."""
    pid = stored.get("pid") or 0
    if pid <= 0:
        return False
    return proc_start_time(pid) == stored.get("init_start_time")


def status_of(root: str, cid: str, stored: dict[str, Any]) -> str:
    """created | running | paused | stopped, derived from the live system."""
    if not init_alive(stored):
        return "stopped"
    if os.path.exists(os.path.join(container_dir(root, cid), FIFO_NAME)):
        return "created"
    if stored.get("paused_probe"):
        from dockyard.runtime.cgroups import open_cgroup

        if open_cgroup(stored.get("cgroups_path"), cid).state() == "paused":
            return "paused"
    return "running"


def public_state(root: str, cid: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The OCI state document (plus runc's extra fields) for ``state``/``list``."""
    status = status_of(root, cid, stored)
    out: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": cid,
        "pid": stored.get("pid", 0) if status != "stopped" else 0,
        "status": status,
        "bundle": stored.get("bundle", ""),
        "rootfs": stored.get("rootfs", ""),
        "created": stored.get("created", ""),
        "owner": stored.get("owner", ""),
    }
    if stored.get("annotations"):
        out["annotations"] = stored["annotations"]
    return out


def remove_dir(path: str) -> None:
    """Remove a state directory (flat: files only); shutil would cost an import."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def utc_now() -> str:
    """RFC 3339 timestamp with nanosecond digits, as runc writes ``created``."""
    import time

    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"


def list_ids(root: str) -> list[str]:
    """Ids of every container with a state file under ``root``."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.exists(os.path.join(root, n, STATE_FILE))]


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` exits even though it is not our child (pidfd poll)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
