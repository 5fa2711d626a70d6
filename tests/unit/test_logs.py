"""Log writing (json-file, local, rotation) and reading (tail, since/until, streams, follow)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from dockyard.containers.logs import LogQuery, parse_time, read_logs, rfc3339_to_ns
from dockyard.containers.stdcopy import STDERR, STDOUT, demux_all
from dockyard.errors import NotImplementedByEngine
from dockyard.runtime.logformat import parse_size, rfc3339_nano, rotation_limits
from helpers.logwriter import LogWriter


def test_time_formats() -> None:
    ns = 1_700_000_000_123_456_789
    text = rfc3339_nano(ns)
    assert text == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_to_ns(text) == ns
    assert rfc3339_nano(1_700_000_000_100_000_000) == "2023-11-14T22:13:20.1Z"
    assert rfc3339_to_ns("2023-11-14T23:13:20.1+01:00") == 1_700_000_000_100_000_000
    assert parse_time("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_time("1700000000") == 1_700_000_000_000_000_000


def test_sizes_and_defaults() -> None:
    assert parse_size("10m") == 10 * 1024 * 1024
    assert parse_size("2k") == 2048
    assert rotation_limits({}) == (10 * 1024 * 1024, 3)
    assert rotation_limits({"max-size": "1k", "max-file": "5"}) == (1024, 5)


def test_json_file_format_and_partial_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "c-json.log")
    w = LogWriter("json-file", path, {})
    w.write("stdout", b"hel")
    w.write("stdout", b"lo\nwor")
    w.write("stderr", b"oops\n")
    w.close()
    recs = [json.loads(x) for x in open(path)]
    assert [(r["log"], r["stream"]) for r in recs] == [("hello\n", "stdout"), ("oops\n", "stderr"), ("wor", "stdout")]
    assert all(r["time"].endswith("Z") for r in recs)


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_rotation_tail_and_streams(tmp_path: Path, driver: str) -> None:
    path = str(tmp_path / "log")
    w = LogWriter(driver, path, {"max-size": "1k", "max-file": "3"})
    for i in range(200):
        w.write("stdout" if i % 2 == 0 else "stderr", f"line {i}\n".encode())
    w.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["log", "log.1", "log.2"]
    assert all(os.path.getsize(tmp_path / n) <= 1024 for n in names)
    out = demux_all(b"".join(read_logs(path, driver, LogQuery(tail=4), False, lambda: False)))
    assert out[STDOUT] == b"line 196\nline 198\n" and out[STDERR] == b"line 197\nline 199\n"
    # tail counts lines of both streams, the stream filter applies to what it kept (docker's order)
    only_err = b"".join(read_logs(path, driver, LogQuery(stdout=False, tail=3), True, lambda: False))
    assert only_err == b"line 197\nline 199\n"
    stamped = b"".join(read_logs(path, driver, LogQuery(tail=1, timestamps=True), True, lambda: False))
    stamp, _, rest = stamped.partition(b" ")
    assert rest == b"line 199\n" and stamp.endswith(b"Z")
    assert b"".join(read_logs(path, driver, LogQuery(tail=0), True, lambda: False)) == b""


def test_since_until(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    w = LogWriter("json-file", path, {})
    w.write("stdout", b"old\n")
    time.sleep(0.02)
    mid = time.time_ns()
    time.sleep(0.02)
    w.write("stdout", b"new\n")
    w.close()
    assert b"".join(read_logs(path, "json-file", LogQuery(since_ns=mid), True, lambda: False)) == b"new\n"
    assert b"".join(read_logs(path, "json-file", LogQuery(until_ns=mid), True, lambda: False)) == b"old\n"


def test_follow_across_rotation_until_stop(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    w = LogWriter("json-file", path, {"max-size": "300", "max-file": "3"})
    w.write("stdout", b"first\n")
    running = threading.Event()
    running.set()
    chunks: list[bytes] = []

    def reader() -> None:
        for chunk in read_logs(path, "json-file", LogQuery(follow=True), True, running.is_set):
            chunks.append(chunk)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(30):
        w.write("stdout", f"n{i}\n".encode())
        time.sleep(0.02)
    w.close()
    running.clear()
    t.join(5)
    assert not t.is_alive()
    assert b"".join(chunks) == b"first\n" + b"".join(f"n{i}\n".encode() for i in range(30))


def test_none_driver_cannot_be_read(tmp_path: Path) -> None:
    w = LogWriter("none", str(tmp_path / "x"), {})
    w.write("stdout", b"a\n")
    w.close()
    assert not os.listdir(tmp_path)
    with pytest.raises(NotImplementedByEngine, match="configured logging driver does not support reading"):
        list(read_logs(str(tmp_path / "x"), "none", LogQuery(), False, lambda: False))


def test_tail_of_a_big_log_reads_backwards(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    w = LogWriter("json-file", path, {"max-size": "0"})
    for i in range(50000):
        w.write("stdout", f"{i}\n".encode())
    w.write("stdout", b"partial-without-newline")  # still being written: not part of the tail
    assert w.file is not None
    w.file.close()
    w.file = None
    start = time.monotonic()
    out = b"".join(read_logs(path, "json-file", LogQuery(tail=3), True, lambda: False))
    assert out == b"49997\n49998\n49999\n"
    assert time.monotonic() - start < 0.5
    assert b"".join(read_logs(path, "json-file", LogQuery(tail=0), True, lambda: False)) == b""


def test_one_big_read_still_rotates_at_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    w = LogWriter("json-file", path, {"max-size": "1k", "max-file": "3"})
    w.write("stdout", b"".join(f"line {i}\n".encode() for i in range(100)))  # one 1 KiB+ chunk of output
    w.close()
    assert all(os.path.getsize(tmp_path / n) <= 1024 for n in os.listdir(tmp_path))
    out = b"".join(read_logs(path, "json-file", LogQuery(tail=1), True, lambda: False))
    assert out == b"line 99\n"


def test_overlong_lines_become_partial_records(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    w = LogWriter("json-file", path, {})
    w.write("stdout", b"x" * 40000 + b"\nend")
    w.close()
    logged = [json.loads(line)["log"] for line in open(path)]
    assert [len(x) for x in logged] == [16384, 16384, 7233, 3]
    assert logged[2].endswith("\n") and logged[3] == "end"
