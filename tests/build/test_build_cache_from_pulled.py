"""``cachefrom`` with an image that was pulled: it has no build-cache rows on this daemon, only its config, and
its history is enough to reuse its steps (as dockerd's classic builder does). One daemon builds and pushes to a
loopback registry; a second daemon pulls it and rebuilds the same Dockerfile with it as the cache source."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon, finish_daemon, start_daemon
from helpers.registry import REGISTRY_BIN, busybox_layer, running_registry, seed_image

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN),
                                reason="docker-registry (Debian package) is not installed")


@pytest.fixture(scope="module")
def reg_tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dycf", dir="/tmp")
    os.makedirs(os.path.join(d, "certs.d"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def other() -> Iterator[TestDaemon]:
    d = start_daemon()
    try:
        yield d
    finally:
        finish_daemon(d)


def _write(ctx: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        with open(os.path.join(ctx, rel), "w") as f:
            f.write(text)


def test_cache_from_a_pulled_image(daemon: TestDaemon, other: TestDaemon, reg_tmp: str, tmp_path: object) -> None:
    ctx = str(tmp_path)
    with running_registry(reg_tmp, "http") as reg:
        seed_image(reg, "cf/base", "v1", [busybox_layer()])
        app = f"{reg.host}/cf/app:v1"
        df = (f"FROM {reg.host}/cf/base:v1\nCOPY f.txt /f.txt\nRUN cat /f.txt > /r\nENV MODE=cached\n"
              "WORKDIR /w\nCMD [\"cat\", \"/r\"]\n")
        _write(ctx, {"Dockerfile": df, "f.txt": "payload\n"})
        r = daemon.cli("build", "-t", app, ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        built = daemon.api_json("GET", f"/images/{app}/json")[1]["Id"]
        r = daemon.cli("push", app)
        assert r.returncode == 0, (r.stdout, r.stderr)

        r = other.cli("pull", app)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert other.api_json("GET", f"/images/{app}/json")[1]["Id"] == built
        # without cachefrom every step runs; with it, every step is a hit and the result is the pulled image
        r = other.cli("build", "-t", "cf/plain", ctx)
        assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout
        r = other.cli("build", "--no-cache", "--cache-from", app, "-t", "cf/nocache", ctx)
        assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout
        other.cli("rmi", "cf/plain", "cf/nocache")
        other.cli("builder", "prune", "-af")
        r = other.cli("build", "--cache-from", app, "-t", "cf/reused", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout.count("Using cache") == 5, r.stdout
        assert "Running in" not in r.stdout.split("Step 3/6")[1].split("Step 4/6")[0], "the RUN did not run"
        assert other.api_json("GET", "/images/cf/reused/json")[1]["Id"] == built
        # a changed last step: the steps before come from the pulled image's history (intermediate images made
        # from its layers), the changed one runs
        _write(ctx, {"Dockerfile": df.replace('CMD ["cat", "/r"]', 'CMD ["cat", "/f.txt"]')})
        r = other.cli("build", "--cache-from", app, "-t", "cf/partly", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout.count("Using cache") == 4, r.stdout
        partly = other.api_json("GET", "/images/cf/partly/json")[1]
        assert partly["RootFS"]["Layers"] == other.api_json("GET", f"/images/{app}/json")[1]["RootFS"]["Layers"]
        assert partly["Config"]["Env"][-1] == "MODE=cached" and partly["Config"]["WorkingDir"] == "/w"
        out = other.cli("run", "--rm", "cf/partly")
        assert out.stdout == "payload\n", out
        # a changed source is a miss from that step on
        _write(ctx, {"f.txt": "other\n"})
        r = other.cli("build", "--cache-from", app, "-t", "cf/changed", ctx)
        assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout
        assert other.cli("run", "--rm", "cf/changed").stdout == "other\n"
