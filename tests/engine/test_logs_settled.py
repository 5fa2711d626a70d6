"""A non-follow log read sees everything the container wrote before the request, even what its monitor had not
yet moved from the stdout/stderr pipes into the log file: the read asks the monitor to drain first."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from io_helpers import run_detached

from dockyard.containers.shim_client import shim_pid
from helpers.daemon import TestDaemon, wait_for

LINES = 200
SCRIPT = ("while [ ! -e /mark/go ]; do usleep 2000; done; "
          f"i=0; while [ $i -lt {LINES} ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done; "
          "touch /mark/written; exec sleep 600")


def _logs(daemon: TestDaemon, cid: str) -> tuple[list[str], list[str]]:
    r = daemon.docker("logs", cid, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines(), r.stderr.splitlines()


@pytest.fixture
def mark() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dymark")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_logs_wait_for_what_the_monitor_has_not_drained(daemon: TestDaemon, busybox_image: str, mark: str) -> None:
    cid = run_detached(daemon, "-v", f"{mark}:/mark", "busybox", "sh", "-c", SCRIPT)
    monitor = shim_pid(os.path.join(daemon.data_root, "containers", cid))
    assert monitor is not None
    os.kill(monitor, signal.SIGSTOP)  # the output now stays in the pipes until the monitor runs again
    try:
        open(os.path.join(mark, "go"), "w").close()
        wait_for(lambda: os.path.exists(os.path.join(mark, "written")), timeout=20)
        got: dict[str, Any] = {}
        reader = threading.Thread(target=lambda: got.update(logs=_logs(daemon, cid)))
        reader.start()
        reader.join(0.5)  # the read is waiting on the stopped monitor, not answering without the output
        assert reader.is_alive()
    finally:
        os.kill(monitor, signal.SIGCONT)
    reader.join(30)
    assert got["logs"] == ([f"out-{i}" for i in range(LINES)], [f"err-{i}" for i in range(LINES)])
    assert daemon.docker("rm", "-f", cid).returncode == 0


def test_run_then_logs_in_a_tight_loop(daemon: TestDaemon, busybox_image: str, mark: str) -> None:
    """The docker-py pattern (start, then logs at once), with the container known to have written."""
    open(os.path.join(mark, "go"), "w").close()
    written = os.path.join(mark, "written")
    for round_ in range(12):
        cid = run_detached(daemon, "-v", f"{mark}:/mark", "busybox", "sh", "-c", SCRIPT)
        wait_for(lambda: os.path.exists(written), timeout=20, interval=0.001)
        out, err = _logs(daemon, cid)
        assert (len(out), len(err)) == (LINES, LINES), f"round {round_}"
        assert daemon.docker("rm", "-f", cid).returncode == 0
        os.unlink(written)
