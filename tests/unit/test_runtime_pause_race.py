"""A container that exits while it is being paused: its state dir goes away between the freeze and the
state write. pause must then say "not running" (the engine maps it to docker's 409 and commit goes on
unpaused), never leak the OSError as a server error."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime import lifecycle
from dockyard.runtime import state as st
from dockyard.runtime.errors import OCIRuntimeError


class _ExitsWhileFreezing:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def freeze(self) -> None:
        st.remove_dir(self.directory)


def test_pause_of_a_container_whose_state_dir_vanishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, cid = str(tmp_path), "exits-meanwhile"
    os.makedirs(st.container_dir(root, cid))
    me = os.getpid()
    st.write_state(root, cid, {"pid": me, "init_start_time": st.proc_start_time(me)})
    directory = st.container_dir(root, cid)

    def fake_cgroup(stored: dict[str, Any], c: str) -> _ExitsWhileFreezing:
        return _ExitsWhileFreezing(directory)

    monkeypatch.setattr(lifecycle, "_cgroup", fake_cgroup)
    with pytest.raises(OCIRuntimeError) as err:
        lifecycle.pause(root, cid)
    assert err.value.kind == "state" and "not running" in str(err.value)


class _InitDiesWhileFreezing:
    """The init exits and is reaped, then the freezer write fails as on a removed v1 cgroup (ENODEV)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def freeze(self) -> None:
        self.proc.kill()
        self.proc.wait()
        raise OSError(errno.ENODEV, "No such device")


def test_pause_of_a_container_whose_cgroup_goes_under_the_freeze(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, cid = str(tmp_path), "cgroup-removed"
    os.makedirs(st.container_dir(root, cid))
    proc = subprocess.Popen(["sleep", "30"])
    try:
        st.write_state(root, cid, {"pid": proc.pid, "init_start_time": st.proc_start_time(proc.pid)})
        monkeypatch.setattr(lifecycle, "_cgroup", lambda stored, c: _InitDiesWhileFreezing(proc))
        with pytest.raises(OCIRuntimeError) as err:
            lifecycle.pause(root, cid)
        assert err.value.kind == "state" and "not running" in str(err.value)
    finally:
        proc.kill()
        proc.wait()


class _FreezerRefuses:
    def freeze(self) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy")


def test_a_freeze_that_fails_on_a_running_container_is_an_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, cid = str(tmp_path), "still-running"
    os.makedirs(st.container_dir(root, cid))
    me = os.getpid()
    st.write_state(root, cid, {"pid": me, "init_start_time": st.proc_start_time(me)})
    monkeypatch.setattr(lifecycle, "_cgroup", lambda stored, c: _FreezerRefuses())
    with pytest.raises(OCIRuntimeError) as err:
        lifecycle.pause(root, cid)
    assert err.value.kind == "other" and "cannot pause" in str(err.value)
