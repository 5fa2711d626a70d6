"""Pull and push throughput against a loopback distribution registry (Debian's docker-registry), dockyard
against a private dockerd where one is installed, in one run.

The image: a 200 MB layer (one file of random bytes: compression cannot help) and a layer of 5000 small
files. Both daemons load the same docker-archive, push it to the same registry (each its own repository) and
pull the repository docker pushed (the same gzip bytes for both). Throughput is the image's uncompressed size
over the wall time of the CLI command. A second push of the same image (everything already there) is timed too.

    bench/run.sh pull_push           (or .venv/bin/python bench/pull_push_bench.py [--size-mb N])
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from engine_dockerd import DOCKERD, PrivateDockerd  # noqa: E402

from helpers.daemon import TestDaemon, finish_daemon  # noqa: E402
from helpers.registry import REGISTRY_BIN, running_registry  # noqa: E402


def _big_layer(path: str, size: int) -> None:
    with tarfile.open(path, "w") as tf:
        ti = tarfile.TarInfo("big.bin")
        ti.size = size
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a child writes the random bytes, so this process streams them into the tar
            os.close(r)
            left = size
            while left:
                n = min(left, 4 << 20)
                os.write(w, os.urandom(n)) if n else None
                left -= n
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            tf.addfile(ti, f)
        os.waitpid(pid, 0)


def _small_files_layer(path: str, n: int) -> None:
    with tarfile.open(path, "w") as tf:
        for d in range(50):
            ti = tarfile.TarInfo(f"files/d{d:02}")
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tf.addfile(ti)
        for i in range(n):
            data = f"file {i}\n".encode() * (1 + i % 200)
            ti = tarfile.TarInfo(f"files/d{i % 50:02}/f{i:05}.txt")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def make_archive(tmp: str, size_mb: int, files: int) -> tuple[str, int]:
    """A docker-archive (``docker save`` layout) of the bench image; returns (path, uncompressed bytes)."""
    l1, l2 = os.path.join(tmp, "l1.tar"), os.path.join(tmp, "l2.tar")
    _big_layer(l1, size_mb * 1_000_000)
    _small_files_layer(l2, files)
    diff_ids = [_sha256_file(l1), _sha256_file(l2)]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                      "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                      "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "big"},
                                  {"created": "2024-01-01T00:00:00Z", "created_by": "files"}]}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    out = os.path.join(tmp, "image.tar")
    with tarfile.open(out, "w") as tf:
        for name, data in ((cfg_name, cfg), ("manifest.json", json.dumps(
                [{"Config": cfg_name, "RepoTags": ["bench/image:v1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]
        ).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        tf.add(l1, "l1/layer.tar")
        tf.add(l2, "l2/layer.tar")
    total = os.path.getsize(l1) + os.path.getsize(l2)
    os.unlink(l1)
    os.unlink(l2)
    return out, total


def timed(fn: object, *args: str) -> float:
    t = time.perf_counter()
    r = fn(*args)  # type: ignore[operator]
    dt = time.perf_counter() - t
    if r.returncode != 0:
        err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode(errors="replace")
        raise RuntimeError(f"{' '.join(args)} failed: {err[-800:]}")
    return dt


def run_engine(name: str, docker: object, load: object, reg_host: str, repo: str, pull_repo: str,
               pull_first: object = None) -> dict[str, float]:
    load()  # type: ignore[operator]
    target = f"{reg_host}/{repo}:v1"
    assert timed(docker, "tag", "bench/image:v1", target) >= 0
    push = timed(docker, "push", target)
    push2 = timed(docker, "push", target)
    if pull_first is not None:
        pull_first()  # type: ignore[operator]
    timed(docker, "rmi", "-f", "bench/image:v1", target)
    leftovers = docker("images", "-q")  # type: ignore[operator]
    ids = (leftovers.stdout if isinstance(leftovers.stdout, str) else leftovers.stdout.decode()).split()
    if ids:
        docker("rmi", "-f", *ids)  # type: ignore[operator]
    pull = timed(docker, "pull", f"{reg_host}/{pull_repo}:v1")
    return {"push": push, "push2": push2, "pull": pull}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=5000)
    args = ap.parse_args()
    if not os.path.exists(REGISTRY_BIN):
        print("docker-registry not installed: skipped")
        return 0
    tmp = tempfile.mkdtemp(prefix="dypb", dir="/tmp")
    results: dict[str, dict[str, float]] = {}
    try:
        archive, total = make_archive(tmp, args.size_mb, args.files)
        print(f"image: {args.size_mb} MB random layer + {args.files} small files = {total / 1e6:.1f} MB uncompressed")
        with running_registry(tmp, "http") as reg:
            dockerd = None
            if DOCKERD:
                dockerd = PrivateDockerd().start()
                try:
                    def dk_load() -> None:
                        timed(dockerd.docker, "load", "-i", archive)  # type: ignore[union-attr]

                    results["docker"] = run_engine("docker", dockerd.docker, dk_load, reg.host, "bench/docker",
                                                   "bench/docker")
                finally:
                    left = dockerd.stop()
                    if left:
                        print(f"dockerd left: {left}")
            d = TestDaemon().start()
            try:
                def dy_load() -> None:
                    timed(d.docker, "load", "-i", archive)

                pull_repo = "bench/docker" if "docker" in results else "bench/dockyard"
                results["dockyard"] = run_engine("dockyard", d.docker, dy_load, reg.host, "bench/dockyard", pull_repo)
            finally:
                finish_daemon(d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mb = total / 1e6
    for eng, r in results.items():
        print(f"{eng:9} push {r['push']:6.2f} s ({mb / r['push']:6.1f} MB/s)   second push {r['push2']:5.2f} s   "
              f"pull {r['pull']:6.2f} s ({mb / r['pull']:6.1f} MB/s)")
    if "docker" in results and "dockyard" in results:
        dk, dy = results["docker"], results["dockyard"]
        print(f"ratios (dockyard vs docker): pull {dk['pull'] / dy['pull']:.2f}x   push {dk['push'] / dy['push']:.2f}x"
              f"   second push {dy['push2']:.2f} s (target <= 0.2 s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as e:
        print(f"timed out: {e}")
        sys.exit(1)
