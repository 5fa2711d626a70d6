"""start, state, kill, delete, pause, resume, ps, update on an existing container."""

from __future__ import annotations

import os
import signal

from dockyard.runtime import state as st
from dockyard.runtime.errors import OCIRuntimeError

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any


def _cgroup(stored: dict[str, Any], cid: str) -> Any:
    from dockyard.runtime.cgroups import open_cgroup

    return open_cgroup(stored.get("cgroups_path"), cid)


def start(root: str, cid: str) -> None:
    """Release the init blocked on the exec fifo."""
    stored = st.read_state(root, cid)
    status = st.status_of(root, cid, stored)
    if status != "created":
        if status == "stopped":
            raise OCIRuntimeError("cannot start a container that has stopped", "state")
        raise OCIRuntimeError(f"cannot start an already {status} container", "state")
    fifo = os.path.join(st.container_dir(root, cid), st.FIFO_NAME)
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: no reader, the init is gone
        raise OCIRuntimeError("cannot start a container that has stopped", "state") from None
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    os.unlink(fifo)
    if (stored.get("hooks") or {}).get("poststart"):
        from dockyard.runtime.hooks import run_hooks

        run_hooks(stored, "poststart", st.public_state(root, cid, stored))


def state(root: str, cid: str) -> dict[str, Any]:
    return st.public_state(root, cid, st.read_state(root, cid))


def parse_signal(value: str | int) -> int:
    """``9``, ``KILL`` or ``SIGKILL`` to a signal number."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise OCIRuntimeError(f"unknown signal {value!r}", "invalid") from None


def kill(root: str, cid: str, sig: int, all_processes: bool = False) -> None:
    stored = st.read_state(root, cid)
    if not st.init_alive(stored):
        raise OCIRuntimeError("container not running", "state")
    if all_processes:
        for pid in _cgroup(stored, cid).pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    try:
        os.kill(stored["pid"], sig)
    except ProcessLookupError:
        raise OCIRuntimeError("container not running", "state") from None


def delete(root: str, cid: str, force: bool = False) -> None:
    """Remove a stopped (or created, or with ``force`` any) container: cgroup, state, hooks."""
    try:
        stored = st.read_state(root, cid)
    except OCIRuntimeError:
        directory = st.container_dir(root, cid)
        if force and os.path.isdir(directory):
            st.remove_dir(directory)
            return
        raise
    status = st.status_of(root, cid, stored)
    cgroup = _cgroup(stored, cid)
    if status in ("running", "paused") and not force:
        raise OCIRuntimeError(f"cannot delete container {cid} that is not stopped: {status}", "state")
    if status != "stopped":
        if status == "paused":
            cgroup.thaw()
        try:
            os.kill(stored["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        st.wait_gone(stored["pid"])
    try:
        cgroup.destroy(kill=bool(cgroup.exists() and cgroup.pids()))
    except Exception as exc:  # noqa: BLE001 - report, the state dir still has to go
        raise OCIRuntimeError(f"cannot remove cgroup of {cid}: {exc}", "other") from None
    finally:
        if (stored.get("hooks") or {}).get("poststop"):
            from dockyard.runtime.hooks import run_hooks

            run_hooks(stored, "poststop", st.public_state(root, cid, stored) | {"status": "stopped"})
        st.remove_dir(st.container_dir(root, cid))


def _need_running(root: str, cid: str) -> dict[str, Any]:
    stored = st.read_state(root, cid)
    status = st.status_of(root, cid, stored)
    if status not in ("running", "paused"):
        raise OCIRuntimeError(f"container not running: {cid} is {status}", "state")
    return stored


def pause(root: str, cid: str) -> None:
    stored = _need_running(root, cid)
    try:
        _cgroup(stored, cid).freeze()
    except Exception as exc:  # noqa: BLE001 - the API promises OCIRuntimeError
        # A container that exits meanwhile has its cgroup removed under the freeze (ENOENT, or ENODEV from a
        # v1 freezer file of a removed cgroup): that is "not running", not a failure to pause.
        if (isinstance(exc, FileNotFoundError) or not st.init_alive(stored)
                or not os.path.isdir(st.container_dir(root, cid))):
            raise OCIRuntimeError(f"container not running: {cid} has exited", "state") from None
        raise OCIRuntimeError(f"cannot pause {cid}: {exc}", "other") from None
    if not stored.get("paused_probe"):
        stored["paused_probe"] = True
        try:
            st.write_state(root, cid, stored)
        except FileNotFoundError:
            # the container exited and its state dir was removed between the check and this write
            raise OCIRuntimeError(f"container not running: {cid} has exited", "state") from None


def resume(root: str, cid: str) -> None:
    stored = _need_running(root, cid)
    cgroup = _cgroup(stored, cid)
    if cgroup.state() != "paused":
        raise OCIRuntimeError("container not paused", "state")
    try:
        cgroup.thaw()
    except Exception as exc:  # noqa: BLE001 - the API promises OCIRuntimeError
        raise OCIRuntimeError(f"cannot resume {cid}: {exc}", "other") from None


def ps(root: str, cid: str) -> list[int]:
    stored = st.read_state(root, cid)
    return sorted(_cgroup(stored, cid).pids())


def update(root: str, cid: str, resources: dict[str, Any]) -> None:
    stored = st.read_state(root, cid)
    if not st.init_alive(stored):
        raise OCIRuntimeError("container not running", "state")
    try:
        _cgroup(stored, cid).update(resources)
    except Exception as exc:  # noqa: BLE001 - CgroupError, OSError, bad values: all "cannot update"
        raise OCIRuntimeError(f"cannot update resources: {exc}", "other") from None


def oom_kill_count(root: str, cid: str) -> int:
    """OOM kills in the container's cgroup (the engine reports OOMKilled from it)."""
    return int(_cgroup(st.read_state(root, cid), cid).oom_kill_count())
