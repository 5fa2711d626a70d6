"""A 1 GB blob goes in (chunked PATCH and a monolithic POST) and comes out (whole and by Range) while no worker's
peak memory grows anywhere near it: the server streams."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import pytest
from regserver import RegistryProcess

GB = 1 << 30
PIECE = os.urandom(1 << 20)


def _pieces(n: int) -> Iterator[bytes]:
    for _ in range(n):
        yield PIECE


def _digest(n: int) -> str:
    h = hashlib.sha256()
    for p in _pieces(n):
        h.update(p)
    return "sha256:" + h.hexdigest()


def _peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _workers(master: int) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        out.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    return out


@pytest.mark.slow
def test_one_gigabyte_blob_streams(registry: RegistryProcess) -> None:
    n = GB // len(PIECE)
    digest = _digest(n)
    assert registry.proc is not None
    deadline = time.monotonic() + 20
    while len(workers := _workers(registry.proc.pid)) < 2 and time.monotonic() < deadline:  # the default: 2
        time.sleep(0.1)
    assert len(workers) == 2, workers
    # chunked: one PATCH streaming the whole GB without Content-Length, then the closing PUT
    loc = registry.request("POST", "/v2/big/blob/blobs/uploads/").headers["location"]
    c = registry.conn()
    c.putrequest("PATCH", loc)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for p in _pieces(n):
        c.send(b"%x\r\n%s\r\n" % (len(p), p))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    r.read()
    assert r.status == 202 and r.getheader("Range") == f"0-{GB - 1}"
    loc = r.getheader("Location")
    c.close()
    assert registry.request("PUT", f"{loc}?digest={digest}").status == 201
    # out again, whole and a range near the end
    c = registry.conn()
    c.request("GET", f"/v2/big/blob/blobs/{digest}")
    r = c.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length") or 0) == GB
    h = hashlib.sha256()
    while b := r.read(1 << 20):
        h.update(b)
    c.close()
    assert "sha256:" + h.hexdigest() == digest
    a = registry.request("GET", f"/v2/big/blob/blobs/{digest}", headers={"Range": f"bytes={GB - 10}-"})
    assert a.status == 206 and a.body == PIECE[-10:]
    peaks = [_peak_rss_kb(w) for w in workers]
    assert max(peaks) < 200 * 1024, peaks  # KiB: far below the blob's 1 GiB
