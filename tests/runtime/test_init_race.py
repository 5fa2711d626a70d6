"""The init's messages may arrive in any order: a slow stage 1 must not fail the create."""

from __future__ import annotations

import sys
from typing import Any

from helpers.runtime import Runtime

# stage 1 forks the init (stage 2) and then reports its pid; on a loaded machine stage 1 can be
# descheduled long enough for the init to finish its setup and report "ready" first
SLOW_STAGE1 = """
import sys, time
from dockyard.runtime import init
real_send = init.send
def send(fd, **msg):
    if "pid" in msg:
        time.sleep(0.5)
    real_send(fd, **msg)
init.send = send
from dockyard.runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ready_before_pid_still_creates(tmp_path: Any, make_bundle: Any) -> None:
    rt = Runtime("dockyard", [sys.executable, "-c", SLOW_STAGE1], str(tmp_path / "state-slow"))
    try:
        bundle = make_bundle(["sh", "-c", "exit 3"])
        res = rt.cmd("run", "--bundle", bundle, "slow1")
        assert res.returncode == 3, res.stderr
    finally:
        problems = rt.cleanup()
    assert not problems, problems
