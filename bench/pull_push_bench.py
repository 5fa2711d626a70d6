"""Pull and push throughput against a loopback distribution registry (Debian's docker-registry), dockyard
against a private dockerd where one is installed, in one run.

The image: a 200 MB layer (one file of random bytes: compression cannot help) and a layer of 5000 small
files. Both daemons load the same docker-archive, push it to the same registry (each its own repository) and
pull the repository docker pushed (the same gzip bytes for both). Throughput is the image's uncompressed size
over the wall time of the CLI command. A second push of the same image (everything already there) is timed too.

Both daemons run side by side and take turns, the order alternating each round, so a slow moment of the machine
(writeback, another process) falls on both. Each pull starts from the same state: every image removed, then
``sync`` (the removed layers' blocks are written back and discarded before the clock starts, not during the
next pull). Each push round uses a fresh registry. Figures are medians with the spread (min-max) over the
rounds, and the ratio of the medians.

    bench/run.sh pull_push           (or .venv/bin/python bench/pull_push_bench.py [--size-mb N] [--rounds N])
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
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


def _out(r: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]) -> str:
    return r.stdout if isinstance(r.stdout, str) else r.stdout.decode()


class Engine:
    """One daemon under test, driven by the docker CLI."""

    def __init__(self, name: str, docker: object, pid: int) -> None:
        self.name = name
        self.docker = docker
        self.pid = pid
        self.times: dict[str, list[float]] = {"push": [], "push2": [], "pull": [], "pull_cpu": []}

    def cpu(self) -> float:
        """CPU seconds (user + system, all threads) the daemon has used so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.docker(*args)  # type: ignore[operator,no-any-return]

    def clear(self) -> None:
        """Remove every image (the layers go with them), then write everything back."""
        ids = _out(self.run("images", "-aq")).split()
        if ids:
            self.run("rmi", "-f", *sorted(set(ids)))
        left = _out(self.run("images", "-aq")).split()
        if left:
            raise RuntimeError(f"{self.name}: images left after rmi: {left}")
        subprocess.run(["sync"], check=True)

    def push_round(self, reg_host: str, repo: str) -> None:
        target = f"{reg_host}/{repo}:v1"
        timed(self.run, "tag", "bench/image:v1", target)
        self.times["push"].append(timed(self.run, "push", target))
        self.times["push2"].append(timed(self.run, "push", target))
        self.run("rmi", target)

    def pull_round(self, ref: str, image_id: str) -> None:
        self.clear()
        c = self.cpu()
        self.times["pull"].append(timed(self.run, "pull", ref))
        self.times["pull_cpu"].append(self.cpu() - c)
        got = _out(self.run("image", "inspect", "--format", "{{.Id}}", ref)).strip()
        if got != image_id:
            raise RuntimeError(f"{self.name}: pulled {ref} as {got}, expected {image_id}")


def _load_avg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.2f} s [{min(xs):.2f}-{max(xs):.2f}]"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5, help="alternating pull rounds")
    ap.add_argument("--push-rounds", type=int, default=3, help="alternating push rounds (a fresh registry each)")
    ap.add_argument("--docker-topdir", action="store_true",
                    help="chattr +T on dockerd's overlay2 dir too (storage/placement.py), to compare like with like")
    args = ap.parse_args()
    if not os.path.exists(REGISTRY_BIN):
        print("docker-registry not installed: skipped")
        return 0
    tmp = tempfile.mkdtemp(prefix="dypb", dir="/tmp")
    engines: list[Engine] = []
    dockerd: PrivateDockerd | None = None
    d: TestDaemon | None = None
    try:
        archive, total = make_archive(tmp, args.size_mb, args.files)
        print(f"image: {args.size_mb} MB random layer + {args.files} small files = {total / 1e6:.1f} MB "
              f"uncompressed; {args.push_rounds} push and {args.rounds} pull rounds; load {_load_avg()}")
        with running_registry(tmp, "http") as reg:
            if DOCKERD:
                dockerd = PrivateDockerd().start()
                assert dockerd.proc is not None
                if args.docker_topdir:  # give dockerd's layers the placement dockyard's layer store asks for
                    overlay = os.path.join(dockerd.tmp, "data", "overlay2")
                    subprocess.run(["chattr", "+T", overlay], check=True)
                engines.append(Engine("docker", dockerd.docker, dockerd.proc.pid))
            d = TestDaemon().start()
            assert d.proc is not None
            engines.append(Engine("dockyard", d.docker, d.proc.pid))
            for e in engines:
                timed(e.run, "load", "-i", archive)
            image_id = _out(engines[0].run("image", "inspect", "--format", "{{.Id}}", "bench/image:v1")).strip()
            for r in range(args.push_rounds):
                order = engines if r % 2 == 0 else engines[::-1]
                if r == 0:
                    for e in order:
                        e.push_round(reg.host, f"bench/{e.name}")
                    continue
                with running_registry(tmp, "http") as fresh:
                    for e in order:
                        e.push_round(fresh.host, f"bench/{e.name}")
            # everyone pulls the bytes docker pushed (the same gzip stream), else dockyard's own
            ref = f"{reg.host}/bench/{engines[0].name}:v1"
            for r in range(args.rounds):
                for e in engines if r % 2 == 0 else engines[::-1]:
                    e.pull_round(ref, image_id)
    finally:
        if d is not None:
            finish_daemon(d)
        if dockerd is not None:
            left = dockerd.stop()
            if left:
                print(f"dockerd left: {left}")
        shutil.rmtree(tmp, ignore_errors=True)
    mb = total / 1e6
    med = {e.name: {k: statistics.median(v) for k, v in e.times.items()} for e in engines}
    for e in engines:
        t = e.times
        print(f"{e.name:9} push {_stats(t['push'])} ({mb / med[e.name]['push']:6.1f} MB/s)   "
              f"second push {_stats(t['push2'])}   pull {_stats(t['pull'])} ({mb / med[e.name]['pull']:6.1f} MB/s, "
              f"daemon CPU {med[e.name]['pull_cpu']:.2f} s)")
        print(f"{'':9} pulls: {' '.join(f'{x:.2f}' for x in t['pull'])}")
    if len(engines) == 2:
        dk, dy = med["docker"], med["dockyard"]
        per_round = [a / b for a, b in zip(engines[0].times["pull"], engines[1].times["pull"], strict=True)]
        print(f"ratios (dockyard vs docker, medians{', docker with +T' if args.docker_topdir else ''}): "
              f"pull {dk['pull'] / dy['pull']:.2f}x "
              f"(per round {min(per_round):.2f}-{max(per_round):.2f}x)   push {dk['push'] / dy['push']:.2f}x   "
              f"second push {dy['push2']:.2f} s (target <= 0.2 s)")
    print(f"load after: {_load_avg()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as e:
        print(f"timed out: {e}")
        sys.exit(1)
