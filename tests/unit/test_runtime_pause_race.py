"""A container that exits while it is being paused: its state dir goes away between the freeze and the
state write. pause must then say "not running" (the engine maps it to docker's 409 and commit goes on
unpaused), never leak the OSError as a server error."""
from __future__ import annotations

import os
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
