"""Container logs through the daemon: json-file format, rotation + follow, tail/since/timestamps, drivers."""

from __future__ import annotations

import json
import os
import time

import pytest
from io_helpers import run_detached, wait_exited

from helpers.daemon import TestDaemon


def _log_path(daemon: TestDaemon, cid: str) -> str:
    return os.path.join(daemon.data_root, "containers", cid, f"{cid}-json.log")


def test_json_file_content_and_reading(daemon: TestDaemon, busybox_image: str) -> None:
    cid = run_detached(daemon, "busybox", "sh", "-c", "echo one; sleep 0.2; echo two >&2; sleep 0.3; echo three")
    wait_exited(daemon, cid)
    with open(_log_path(daemon, cid)) as fh:
        recs = [json.loads(line) for line in fh]
    assert [(r["log"], r["stream"]) for r in recs] == [("one\n", "stdout"), ("two\n", "stderr"), ("three\n", "stdout")]
    assert all(r["time"].endswith("Z") and "T" in r["time"] for r in recs)
    r = daemon.docker("logs", cid)
    assert (r.returncode, r.stdout, r.stderr) == (0, "one\nthree\n", "two\n")
    assert daemon.docker("logs", "--tail", "1", cid).stdout == "three\n"
    stamped = daemon.docker("logs", "-t", "--tail", "1", cid).stdout
    assert stamped.endswith("Z three\n") and stamped.startswith(recs[-1]["time"][:19])
    since = recs[2]["time"]
    assert daemon.docker("logs", "--since", since, cid).stdout == "three\n"
    status, _, body = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=0")
    assert status == 200 and body == b"\x01\x00\x00\x00\x00\x00\x00\x04one\n\x01\x00\x00\x00\x00\x00\x00\x06three\n"
    status, _, body = daemon.api("GET", f"/containers/{cid}/logs")
    assert status == 400 and b"you must choose at least one stream" in body
    assert daemon.docker("rm", cid).returncode == 0


@pytest.mark.dockyard_only("dockerd 20.10's json-file follow loses and repeats lines across a rotation (docker 23 "
                           "rewrote that reader)")
def test_rotation_and_follow_across_it(daemon: TestDaemon, busybox_image: str) -> None:
    script = "i=0; while [ $i -lt 150 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); usleep 10000; done"
    cid = run_detached(daemon, "--log-driver", "json-file", "--log-opt", "max-size=2k", "--log-opt", "max-file=2",
                       "busybox", "sh", "-c", script)
    started = time.monotonic()
    r = daemon.docker("logs", "-f", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"line-{i}-xxxxxxxxxxxxxxxxxxxx" for i in range(150)]
    assert time.monotonic() - started < 30  # follow ended with the container
    files = sorted(f for f in os.listdir(os.path.dirname(_log_path(daemon, cid))) if "-json.log" in f)
    assert files == [f"{cid}-json.log", f"{cid}-json.log.1"]
    for name in files:
        assert os.path.getsize(os.path.join(os.path.dirname(_log_path(daemon, cid)), name)) <= 2048
    assert daemon.docker("rm", "-f", cid).returncode == 0


def test_none_and_local_drivers(daemon: TestDaemon, busybox_image: str) -> None:
    cid = run_detached(daemon, "--log-driver", "none", "busybox", "echo", "hidden")
    wait_exited(daemon, cid)
    r = daemon.docker("logs", cid)
    assert r.returncode == 1
    assert "configured logging driver does not support reading" in r.stderr
    assert not any("json.log" in f for f in os.listdir(os.path.dirname(_log_path(daemon, cid))))
    local = run_detached(daemon, "--log-driver", "local", "busybox", "sh", "-c", "echo a; echo b >&2")
    wait_exited(daemon, local)
    r = daemon.docker("logs", local)
    assert (r.stdout, r.stderr) == ("a\n", "b\n")
    assert daemon.docker("rm", cid, local).returncode == 0


def test_tty_logs_are_raw(daemon: TestDaemon, busybox_image: str) -> None:
    cid = run_detached(daemon, "-t", "busybox", "sh", "-c", "echo tty-out")
    wait_exited(daemon, cid)
    status, headers, body = daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    assert status == 200
    assert body == b"tty-out\r\n"
    # API 1.42 added the stream's Content-Type to logs; dockerd 20.10 (1.41) sends none
    assert headers.get("content-type") == ("application/vnd.docker.raw-stream" if daemon.api_version >= "1.42"
                                           else None)
    assert daemon.docker("rm", cid).returncode == 0
