"""The context's file digests live in the daemon's state database: after a restart a no-change rebuild
(context read in place) hits the cache with the persisted digests, a touched file still hits, and a changed
file misses."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time

from helpers.daemon import TestDaemon


def _rows(d: TestDaemon) -> dict[tuple[int, int], str]:
    with sqlite3.connect(os.path.join(d.data_root, "state.db")) as c:
        return {(r[0], r[1]): r[2] for r in c.execute("SELECT dev, ino, digest FROM build_file_digests")}


def test_digests_persist_across_restart(daemon: TestDaemon, busybox_image: str, tmp_path: object) -> None:
    d = daemon
    ctx = str(tmp_path)
    os.makedirs(os.path.join(ctx, "files"))
    data = {f"f{i}": os.urandom(1000 + i) for i in range(20)}
    for name, body in data.items():
        with open(os.path.join(ctx, "files", name), "wb") as f:
            f.write(body)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY files /files\nRUN ls /files | wc -l > /n\n")
    time.sleep(0.3)  # the files are older than the window in which a digest is not trusted
    r = d.cli("build", "-t", "bt/digests", ctx)
    assert r.returncode == 0, r.stderr
    rows = _rows(d)
    for name, body in data.items():
        st = os.lstat(os.path.join(ctx, "files", name))
        assert rows.get((st.st_dev, st.st_ino)) == hashlib.sha256(body).hexdigest()

    d.restart()
    r = d.cli("build", "-t", "bt/digests", ctx)
    assert r.returncode == 0 and r.stdout.count("Using cache") == 2 and "Running in" not in r.stdout, r.stdout

    os.utime(os.path.join(ctx, "files", "f3"))  # touched, same content: still the cache
    r = d.cli("build", "-t", "bt/digests", ctx)
    assert r.returncode == 0 and r.stdout.count("Using cache") == 2, r.stdout

    with open(os.path.join(ctx, "files", "f3"), "wb") as f:
        f.write(b"x" * len(data["f3"]))  # same size, new content
    r = d.cli("build", "-t", "bt/digests", ctx)
    assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout
    out = d.cli("run", "--rm", "bt/digests", "cat", "/files/f3")
    assert out.stdout == "x" * len(data["f3"])
