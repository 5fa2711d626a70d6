"""kill -9 of the daemon at each named step of pull, push and build (failpoints, util/failpoint.py): after the
restart the stores hold nothing half-made (no temp file, no orphan layer, blob or snapshot, no layer held by a
holder that is gone), no build step container is left running, every image runs, and the interrupted
operation can be retried to success."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from helpers.crash import crash_at
from helpers.daemon import TestDaemon
from helpers.registry import (
    DOCKER_MANIFEST,
    Registry,
    busybox_layer,
    files_layer,
    running_registry,
    seed_image,
)
from helpers.storecheck import store_problems

DOCKERFILE = "FROM busybox\nARG N\nRUN echo $N > /n && sleep 0.2\nENV CRASH=$N\nRUN cat /n\n"


@pytest.fixture(scope="module")
def reg(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "http") as r:
        seed_image(r, "crash/pull", "latest", [busybox_layer(), files_layer({"crash.txt": b"crash\n"})], cmd=["sh"])
        yield r


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_tar: str) -> TestDaemon:
    daemon.load_busybox(busybox_tar)
    return daemon


def running_ids(d: TestDaemon) -> set[str]:
    return {c["Id"] for c in json.loads(d.api("GET", "/containers/json")[2])}


def consistent(d: TestDaemon) -> None:
    """Nothing half-made, nothing running, every image runs."""
    deadline = time.monotonic() + 10
    while (found := store_problems(d.data_root, running_ids(d))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found == []
    assert running_ids(d) == set(), "a build step container is left running"
    for img in json.loads(d.api("GET", "/images/json?all=1")[2]):
        p = d.docker("run", "--rm", img["Id"], "sh", "-c", "true")
        assert p.returncode == 0, (img, p.stderr)


@pytest.mark.parametrize("point", ["layer.register.blob-written", "image.pull.layer-unpacked",
                                   "image.pull.committed", "image.pull.digest-set"])
def test_pull_interrupted(d: TestDaemon, reg: Registry, point: str) -> None:
    ref = f"{reg.host}/crash/pull:latest"
    status, info = d.api_json("GET", f"/images/{ref}/json")
    if status == 200:  # by ID: its tag and its digest reference go, and the layers it alone holds
        assert d.docker("rmi", "-f", info["Id"]).returncode == 0
    crash_at(d, point, lambda: d.api("POST", f"/images/create?fromImage={reg.host}/crash/pull&tag=latest",
                                     timeout=60))
    consistent(d)
    p = d.docker("pull", ref)  # the interrupted pull can be retried
    assert p.returncode == 0, p.stderr
    p = d.docker("run", "--rm", ref, "cat", "/crash.txt")
    assert p.stdout == "crash\n", p.stderr
    consistent(d)


@pytest.mark.parametrize("point", ["image.push.upload-started", "image.push.blobs-pushed",
                                   "image.push.manifest-put"])
def test_push_interrupted(d: TestDaemon, reg: Registry, point: str) -> None:
    repo = "crash/push-" + point.rsplit(".", 1)[1]
    ref = f"{reg.host}/{repo}:latest"
    assert d.docker("tag", "busybox", ref).returncode == 0
    crash_at(d, point, lambda: d.docker("push", ref))
    consistent(d)
    p = d.docker("push", ref)  # the interrupted push can be retried
    assert p.returncode == 0, p.stderr
    status, _h, _b = reg.get_manifest(repo, "latest", DOCKER_MANIFEST)
    assert status == 200
    assert d.docker("rmi", ref).returncode == 0


@pytest.mark.parametrize("point", ["container.start.shim-launched", "layer.register.blob-written",
                                   "build.step.committed", "build.image.tagged"])
def test_build_interrupted(d: TestDaemon, tmp_path: str, point: str) -> None:
    ctx = os.path.join(str(tmp_path), "ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    n = point.rsplit(".", 1)[1]
    tag = f"crashbuild-{n}:latest"
    crash_at(d, point, lambda: d.cli("build", "--build-arg", f"N={n}", "-t", tag, ctx, timeout=120))
    consistent(d)
    for c in json.loads(d.api("GET", "/containers/json?all=1")[2]):  # a step that ended, its removal cut short
        assert d.docker("rm", c["Id"]).returncode == 0
    p = d.cli("build", "--build-arg", f"N={n}", "-t", tag, ctx, timeout=120)  # the build can be retried
    assert p.returncode == 0, p.stderr
    p = d.docker("run", "--rm", tag, "cat", "/n")
    assert p.stdout == f"{n}\n", p.stderr
    consistent(d)
    assert d.docker("rmi", tag).returncode == 0
