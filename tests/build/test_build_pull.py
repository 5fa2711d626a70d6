"""Builds and the registry: ``pull=1`` fetches a newer base even when one is present (and fails when the registry
cannot answer); without it the local image is used."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon
from helpers.registry import REGISTRY_BIN, busybox_layer, files_layer, running_registry, seed_image

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN),
                                reason="docker-registry (Debian package) is not installed")


@pytest.fixture(scope="module")
def reg_tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyreg", dir="/tmp")
    os.makedirs(os.path.join(d, "certs.d"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_pull_flag_refreshes_the_base(daemon: TestDaemon, reg_tmp: str, tmp_path: object) -> None:
    ctx = str(tmp_path)
    with running_registry(reg_tmp, "http") as reg:
        seed_image(reg, "base/pulled", "v1", [busybox_layer(), files_layer({"v.txt": b"one\n"})])
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM {reg.host}/base/pulled:v1\nCMD [\"cat\", \"/v.txt\"]\n")
        r = daemon.cli("build", "-t", "pl/app", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert daemon.cli("run", "--rm", "pl/app").stdout == "one\n"
        seed_image(reg, "base/pulled", "v1", [busybox_layer(), files_layer({"v.txt": b"two\n"})])
        r = daemon.cli("build", "-t", "pl/app", ctx)  # no --pull: the local base, from the cache
        assert r.returncode == 0 and "Using cache" in r.stdout
        assert daemon.cli("run", "--rm", "pl/app").stdout == "one\n"
        r = daemon.cli("build", "--pull", "-t", "pl/app", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert daemon.cli("run", "--rm", "pl/app").stdout == "two\n"
        host = reg.host
    r = daemon.cli("build", "--pull", ctx)  # the registry is gone: --pull fails the build
    assert r.returncode != 0 and host in (r.stdout + r.stderr)
