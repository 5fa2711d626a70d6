"""A full disk (the data root on a small tmpfs): import, load, commit, cp, pull and build that do not fit fail with
docker's "no space left on device" and leave nothing behind (and succeed once space is back); a container whose log fills the disk keeps running and logs
again once space returns; the state database survives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon

SIZE_MB = 96


def used(path: str) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def files_under(path: str) -> list[str]:
    return sorted(os.path.join(r, f) for r, _d, fs in os.walk(path) for f in fs)


@pytest.fixture(scope="module")
def small(busybox_tar: str) -> Iterator[TestDaemon]:
    mnt = tempfile.mkdtemp(prefix="dytfull", dir="/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", mnt], check=True)
    d = TestDaemon(tmp=os.path.join(mnt, "t"))
    try:
        d.start()
        d.load_busybox(busybox_tar)
        yield d
    finally:
        forced = d.stop()
        left = d.leftovers()
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)
        assert not left and not forced, (left, forced)


def big_tar(path: str, mb: int) -> str:
    """A tar holding one file of ``mb`` MiB of random bytes (nothing compresses it away)."""
    with tarfile.open(path, "w") as t:
        data = os.urandom(mb << 20)
        info = tarfile.TarInfo("big.bin")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return path


def docker_archive(path: str, layer: str) -> str:
    """A `docker save` archive of one image whose only layer is ``layer``."""
    with open(layer, "rb") as f:
        diff_id = "sha256:" + hashlib.sha256(f.read()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "history": [{}]}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bigload:latest"],
                            "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in (("config.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        t.add(layer, "layer/layer.tar")
    return path


def images(d: TestDaemon) -> list[str]:
    return sorted(i["Id"] for i in json.loads(d.api("GET", "/images/json")[2]))


def assert_left_nothing(d: TestDaemon, before_images: list[str], before_used: int, before_blobs: list[str]) -> None:
    assert images(d) == before_images
    assert files_under(os.path.join(d.data_root, "tmp")) == []
    assert files_under(os.path.join(d.data_root, "blobs")) == before_blobs
    deadline = time.monotonic() + 10  # removed trees are deleted in the background
    while used(d.data_root) > before_used + (2 << 20) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert used(d.data_root) <= before_used + (2 << 20)


def test_import_load_commit_cp_that_do_not_fit(small: TestDaemon, tmp_path: object) -> None:
    d = small
    scratch = str(tmp_path)
    layer = big_tar(os.path.join(scratch, "layer.tar"), SIZE_MB + 20)
    before = (images(d), used(d.data_root), files_under(os.path.join(d.data_root, "blobs")))

    p = d.docker("import", layer, "bigimport")
    assert p.returncode != 0 and "no space left on device" in p.stderr, p.stderr
    assert "Errno" not in p.stderr
    assert_left_nothing(d, *before)

    p = d.docker("load", "-i", docker_archive(os.path.join(scratch, "img.tar"), layer))
    assert p.returncode != 0 and "no space left on device" in p.stderr, p.stderr
    assert_left_nothing(d, *before)

    p = d.docker("run", "--name", "writer", "busybox", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=40")
    assert p.returncode == 0, p.stderr
    with_container = (images(d), used(d.data_root), files_under(os.path.join(d.data_root, "blobs")))
    p = d.docker("commit", "writer", "bigcommit")
    assert p.returncode != 0 and "no space left on device" in p.stderr, p.stderr
    assert_left_nothing(d, *with_container)

    p = d.docker("cp", os.path.join(scratch, "layer.tar"), "writer:/copied.tar")
    assert p.returncode != 0 and "no space left on device" in p.stderr, p.stderr
    assert files_under(os.path.join(d.data_root, "tmp")) == []
    assert d.docker("rm", "writer").returncode == 0


def test_log_filling_the_disk(small: TestDaemon) -> None:
    d = small
    p = d.docker("run", "-d", "--name", "chatty", "--log-opt", "max-size=500m", "busybox", "sh", "-c",
                 "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; done")
    assert p.returncode == 0, p.stderr
    filler = os.path.join(os.path.dirname(d.tmp), "filler")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={SIZE_MB}"], capture_output=True)
        assert os.statvfs(d.data_root).f_bavail == 0
        time.sleep(2)
        assert d.docker("inspect", "-f", "{{.State.Running}}", "chatty").stdout.strip() == "true"
        frozen = d.docker("logs", "--tail", "1", "chatty").stdout
    finally:
        os.unlink(filler)
    deadline = time.monotonic() + 10
    while d.docker("logs", "--tail", "1", "chatty").stdout == frozen and time.monotonic() < deadline:
        time.sleep(0.2)
    assert d.docker("logs", "--tail", "1", "chatty").stdout != frozen  # logging again
    assert d.docker("inspect", "-f", "{{.State.Running}}", "chatty").stdout.strip() == "true"
    assert d.docker("rm", "-f", "chatty").returncode == 0


def test_state_survives_failed_writes(small: TestDaemon) -> None:
    d = small
    assert d.docker("create", "--name", "keeper", "busybox", "true").returncode == 0
    filler = os.path.join(os.path.dirname(d.tmp), "filler")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={SIZE_MB}"], capture_output=True)
        p = d.docker("create", "--name", "nospace", "busybox", "true")
        assert p.returncode != 0 and "no space left on device" in p.stderr, p.stderr
    finally:
        os.unlink(filler)
    d.kill9()
    d.start()
    names = [c["Names"][0] for c in json.loads(d.api("GET", "/containers/json?all=1")[2])]
    assert "/keeper" in names and "/nospace" not in names
    assert d.docker("create", "--name", "nospace", "busybox", "true").returncode == 0
    assert d.docker("rm", "keeper", "nospace").returncode == 0


def free_mb(path: str) -> int:
    st = os.statvfs(path)
    return int(st.f_bavail * st.f_frsize) >> 20


def test_pull_and_build_that_do_not_fit(small: TestDaemon, tmp_path: object) -> None:
    """A pull and a build that do not fit fail with docker's wording and leave no partial layer, image or temp
    file; once space is back, the same pull and build succeed."""
    from helpers.registry import busybox_layer, running_registry, seed_image
    from helpers.storecheck import store_problems

    d = small
    scratch = str(tmp_path)
    ctx = os.path.join(scratch, "ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1M count=20\n")
    layer = big_tar(os.path.join(scratch, "big.tar"), 30)
    with open(layer, "rb") as f:
        layer_bytes = f.read()
    with running_registry(scratch, "http") as reg:
        seed_image(reg, "full/pull", "latest", [busybox_layer(), layer_bytes], cmd=["sh"])
        ref = f"{reg.host}/full/pull:latest"
        filler = os.path.join(os.path.dirname(d.tmp), "filler")
        try:  # leave 30 MiB: the pull needs 60 (the layer's tar and its files), the build's commit 40
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={free_mb(d.data_root) - 30}"],
                           capture_output=True, check=True)
            before = (images(d), used(d.data_root), files_under(os.path.join(d.data_root, "blobs")))
            p = d.docker("pull", ref)
            assert p.returncode != 0 and "no space left on device" in p.stderr, p.stderr
            assert "Errno" not in p.stderr
            assert_left_nothing(d, *before)
            assert store_problems(d.data_root, set()) == []
            p = d.cli("build", "--force-rm", "-t", "fullbuild", ctx, timeout=120)
            assert p.returncode != 0 and "no space left on device" in p.stdout + p.stderr, p.stdout + p.stderr
            assert "Errno" not in p.stdout + p.stderr
            assert json.loads(d.api("GET", "/containers/json?all=1")[2]) == []
            assert_left_nothing(d, *before)
            assert store_problems(d.data_root, set()) == []
        finally:
            os.unlink(filler)
        p = d.docker("pull", ref)  # space is back
        assert p.returncode == 0, p.stderr
        assert d.docker("run", "--rm", ref, "sh", "-c", "test -s /big.bin").returncode == 0
        pulled = json.loads(d.api("GET", f"/images/{ref}/json")[2])["Id"]
        assert d.docker("rmi", pulled).returncode == 0  # by ID: its tag and its digest reference
        p = d.cli("build", "--force-rm", "-t", "fullbuild", ctx, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert d.docker("run", "--rm", "fullbuild", "sh", "-c", "test -s /big").returncode == 0
        assert d.docker("rmi", "fullbuild").returncode == 0
        d.api("POST", "/build/prune?all=1")
