"""Image throughput: import, save, load, export, commit (MB/s) beside the machine's own limits.

Two layers: one 200 MB file (incompressible) and 5000 small files. Each operation runs on the image
service directly (no HTTP), against a fresh data root on the same disk as the baselines, which are
``tar -x`` into that disk, ``sha256sum`` and ``gzip -d`` over the same bytes. Run as root:

    .venv/bin/python bench/images_bench.py [--big-mb 200] [--small-files 5000]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

from dockyard.images import archive
from dockyard.images.service import ImageService
from dockyard.storage.blobs import BlobStore
from dockyard.storage.db import StateDB
from dockyard.storage.layers import LayerStore
from dockyard.storage.snapshots import Snapshotter


class _NoContainers:
    """No container uses any image here (the benchmark has no container service)."""

    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return []


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_tree(root: str, kind: str, big_mb: int, small_files: int) -> None:
    os.makedirs(root)
    if kind == "big":
        with open(os.path.join(root, "big.bin"), "wb") as f:
            for _ in range(big_mb):
                f.write(os.urandom(1 << 20))
    else:
        rnd = os.urandom(4096)
        for i in range(small_files):
            d = os.path.join(root, f"d{i % 50:02d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(rnd[: 512 + (i * 37) % 3500])


def write_sink(chunks: object, path: str) -> None:
    with open(path, "wb") as f:
        for c in chunks:  # type: ignore[attr-defined]
            f.write(c)


def bench(kind: str, work: str, big_mb: int, small_files: int) -> dict[str, float]:
    src = os.path.join(work, f"src-{kind}")
    make_tree(src, kind, big_mb, small_files)
    tar_path = os.path.join(work, f"{kind}.tar")
    subprocess.run(["tar", "-C", src, "-cf", tar_path, "."], check=True)
    gz_path = tar_path + ".gz"
    subprocess.run(f"gzip -1 -c {tar_path} > {gz_path}", shell=True, check=True)
    mb = os.path.getsize(tar_path) / 1e6
    results: dict[str, float] = {"size_mb": mb}

    # baselines
    out = os.path.join(work, f"x-{kind}")
    os.makedirs(out)
    results["tar -x"] = mb / timed(lambda: subprocess.run(["tar", "-C", out, "-xf", tar_path], check=True))
    shutil.rmtree(out)
    results["sha256sum"] = mb / timed(lambda: subprocess.run(["sha256sum", tar_path], check=True,
                                                             capture_output=True))
    results["gzip -d"] = mb / timed(lambda: subprocess.run(f"gzip -d -c {gz_path} > /dev/null", shell=True,
                                                           check=True))

    root = os.path.join(work, f"root-{kind}")
    os.makedirs(root)
    db = StateDB(os.path.join(root, "state.db"))
    layers = LayerStore(db, root, BlobStore(root))
    svc = ImageService(db, root, None, layers, _NoContainers())
    snaps = Snapshotter(db, root, layers)
    try:
        with open(tar_path, "rb") as f:
            results["import"] = mb / timed(lambda: svc.import_tar(f, "bench", kind))
        with open(gz_path, "rb") as f:
            results["import (gzip)"] = mb / timed(lambda: svc.import_tar(f, "benchgz", kind))
        svc.remove(f"benchgz:{kind}")
        saved = os.path.join(work, f"{kind}-saved.tar")
        results["save"] = mb / timed(lambda: write_sink(archive.save(svc, [f"bench:{kind}"]), saved))
        svc.remove(f"bench:{kind}")
        with open(saved, "rb") as f:
            results["load"] = mb / timed(lambda: archive.load(svc, f))
        img = svc.resolve(f"bench:{kind}")
        snaps.prepare("c-export", img.id, img.chain_ids)
        exported = os.path.join(work, f"{kind}-export.tar")
        results["export"] = mb / timed(lambda: write_sink(snaps.export("c-export"), exported))
        start = time.perf_counter()
        snaps.prepare("c-second", img.id, img.chain_ids)
        snaps.mount("c-second")
        results["2nd container prepare+mount (ms)"] = (time.perf_counter() - start) * 1000
        snaps.remove("c-second")
        # commit: the same data written into a container of an empty image
        empty = svc.import_tar(io.BytesIO(b"\0" * 1024), "empty", "1")  # an empty tar
        snaps.prepare("c-commit", empty.id, empty.chain_ids)
        merged = snaps.mount("c-commit")
        subprocess.run(["cp", "-a", src + "/.", merged], check=True)
        snaps.unmount("c-commit")
        results["commit"] = mb / timed(lambda: svc.commit("c-commit", empty.id, {"Cmd": ["sh"]},
                                                          snaps.diff_tar("c-commit"), "committed", kind))
        for cid in ("c-export", "c-commit"):
            snaps.remove(cid)
    finally:
        for cid in ("c-export", "c-second", "c-commit"):
            try:
                snaps.remove(cid)
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
        db.close()
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small-files", type=int, default=5000)
    ap.add_argument("--dir", default="/var/tmp", help="where data root and baselines live (a tmpfs isolates CPU cost)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dybench", dir=args.dir)
    try:
        rows = {kind: bench(kind, work, args.big_mb, args.small_files) for kind in ("big", "small")}
    finally:
        subprocess.run(f"grep -o ' {work}[^ ]*' /proc/self/mounts | xargs -r -n1 umount", shell=True)
        shutil.rmtree(work, ignore_errors=True)
    keys = list(rows["big"])
    print(f"{'':34}{'200MB file':>14}{'5000 files':>14}")
    for k in keys:
        unit = "" if "(ms)" in k or k == "size_mb" else " MB/s"
        print(f"{k + unit:34}{rows['big'][k]:>14.1f}{rows['small'][k]:>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
