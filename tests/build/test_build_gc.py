"""The build cache's size bound from daemon.json (``builder.gc.defaultKeepStorage``): the least recently used
steps go once the cache is over it, and the images only they held go with them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon, finish_daemon, start_daemon


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory: pytest.TempPathFactory, busybox_tar: str) -> Iterator[TestDaemon]:
    cfg = tmp_path_factory.mktemp("cfg") / "daemon.json"
    cfg.write_text(json.dumps({"builder": {"gc": {"enabled": True, "defaultKeepStorage": "1.5MB"}}}))
    d = start_daemon(["--config-file", str(cfg)])
    try:
        d.load_busybox(busybox_tar)
        yield d
    finally:
        finish_daemon(d)


def test_cache_stays_under_keep_storage(small_cache: TestDaemon, tmp_path_factory: pytest.TempPathFactory) -> None:
    d = small_cache
    for n in range(3):
        ctx = str(tmp_path_factory.mktemp(f"c{n}"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM busybox\nRUN head -c 1000000 /dev/urandom > /blob{n}\n")
        r = d.cli("build", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
    rows = d.api_json("GET", "/system/df")[1]["BuildCache"]
    assert sum(r["Size"] for r in rows) <= 1_500_000
    assert any("blob2" in r["Description"] for r in rows), "the newest step is kept"
    assert not any("blob0" in r["Description"] for r in rows), "the oldest step went"
