"""Crash a test daemon at a named step (util/failpoint.py) and bring it back, for the crash-point tests."""

from __future__ import annotations

import http.client
import os
import subprocess
from collections.abc import Callable

from helpers.daemon import TestDaemon


def restart_armed(d: TestDaemon, point: str) -> None:
    """Restart ``d`` (cleanly) with the failpoint ``point`` armed."""
    d.terminate()
    os.environ["DOCKYARD_FAILPOINTS"] = point
    try:
        d.start()
    finally:
        del os.environ["DOCKYARD_FAILPOINTS"]


def die_at(d: TestDaemon, point: str, action: Callable[[], object]) -> None:
    """With ``d`` armed at ``point``, run ``action`` (which reaches it), see the daemon die there, restart it."""
    try:
        action()
    except (OSError, http.client.HTTPException):
        pass  # the daemon died under the request
    assert d.proc is not None
    try:
        d.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the daemon did not reach {point}:\n{d.log_tail()}") from None
    assert d.proc.returncode == -9, f"the daemon did not die at {point}:\n{d.log_tail()}"
    assert f"failpoint {point}" in d.log_tail(400)
    d.start()


def crash_at(d: TestDaemon, point: str, action: Callable[[], object]) -> None:
    """Restart ``d`` armed with ``point``, run ``action``, see the daemon die there, restart it clean."""
    restart_armed(d, point)
    die_at(d, point, action)
