"""Build benchmark: a cold build and a no-change rebuild of the same Dockerfile, in one run.

Dockerfile: FROM busybox, COPY of a 5000-file, 50 MB context, two RUN steps, ENV and CMD. Timed with the dockyard
CLI (context read in place), the docker CLI against dockyard (tar upload, classic protocol), and, where dockerd is
installed, a private real dockerd (bench/engine_dockerd.py) with the classic builder and with BuildKit through
Debian's 20.10 CLI (/usr/bin/docker, DOCKER_BUILDKIT=1). The docker CLI's own share of an upload is timed too,
against a stand-in daemon that only reads the context, alternated with no-change rebuilds through dockyard so the
difference (what the daemon adds) is measured on the same machine state. Every build runs with --network none (the
private dockerd has no bridge). Cold means: no cache for this Dockerfile (the image and the cache are pruned before
each cold run); busybox is present everywhere.

    bench/run.sh build            (or: .venv/bin/python bench/build_bench.py [--rounds N])
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from engine_dockerd import DOCKER_CLI, DOCKER_IO_CLI, DOCKERD, PrivateDockerd  # noqa: E402

from helpers.daemon import finish_daemon, start_daemon  # noqa: E402

DOCKERFILE = """FROM busybox
COPY files /files
RUN find /files -type f | wc -l > /count
RUN du -sk /files > /size
ENV BENCH=1
CMD ["cat", "/count"]
"""


def make_context(root: str, n_files: int = 5000, total: int = 50 * 1000 * 1000) -> None:
    per = total // n_files
    os.makedirs(os.path.join(root, "files"))
    for i in range(n_files):
        d = os.path.join(root, "files", f"d{i % 50:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
            f.write(os.urandom(per))
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)


class StandIn:
    """A stand-in daemon that reads the uploaded context and answers at once: ``docker build`` against it is the
    docker CLI's own cost of a tar upload (the least any engine can take on the classic protocol)."""

    def __init__(self) -> None:
        import threading

        self.dir = tempfile.mkdtemp(prefix="dysink", dir="/tmp")
        self.sock_path = os.path.join(self.dir, "sink.sock")
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.sock_path)
        self.srv.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        image = b'{"aux":{"ID":"sha256:' + b"0" * 64 + b'"}}\n'
        f = conn.makefile("rb", buffering=1 << 20)
        with conn, f:
            while line := f.readline():
                method, target = line.split()[:2]
                headers = {}
                while (h := f.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                if b"/build" not in target:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Length: 2\r\n\r\n"
                                 + (b"" if method == b"HEAD" else b"OK"))
                    continue
                while headers.get("transfer-encoding") == "chunked":
                    size = int(f.readline().strip(), 16)
                    f.read(size)
                    f.readline()
                    if size == 0:
                        break
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % len(image) + image)

    def _accept(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def build(self, ctx: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, DOCKER_BUILDKIT="0", DOCKER_HOST=f"unix://{self.sock_path}")
        env.pop("DOCKER_CONTEXT", None)
        return subprocess.run([DOCKER_CLI, "build", "-q", "--network", "none", "-t", "bench/build", ctx],
                              capture_output=True, text=True, env=env)

    def close(self) -> None:
        self.srv.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def paired(fn: Callable[[], subprocess.CompletedProcess[str]], stand_in: StandIn, ctx: str,
           pairs: int) -> tuple[float, float, float]:
    """No-change rebuilds through dockyard and uploads to the stand-in, alternated so both see the same machine:
    (median dockyard, median stand-in, median of the per-pair differences = what the daemon adds)."""
    ours, floor, diff = [], [], []
    for _ in range(pairs):
        a = timed(fn)
        b = timed(lambda: stand_in.build(ctx))
        ours.append(a)
        floor.append(b)
        diff.append(a - b)
    return statistics.median(ours), statistics.median(floor), statistics.median(diff)


def timed(fn: Callable[[], subprocess.CompletedProcess[bytes] | subprocess.CompletedProcess[str]]) -> float:
    t0 = time.perf_counter()
    r = fn()
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode(errors="replace")
        raise RuntimeError(f"build failed: {err[-2000:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ctx = tempfile.mkdtemp(prefix="dybuild", dir="/tmp")
    rows: list[tuple[str, float, float]] = []
    try:
        make_context(ctx)
        d = start_daemon()
        real: PrivateDockerd | None = None
        try:
            d.load_busybox(None)

            def dy_prune() -> None:
                d.cli("rmi", "-f", "bench/build")
                d.api("POST", "/build/prune?all=1")

            def dy_cli() -> subprocess.CompletedProcess[str]:
                return d.cli("build", "-q", "--network", "none", "-t", "bench/build", ctx)

            def dk_cli() -> subprocess.CompletedProcess[str]:
                env = dict(d.env, DOCKER_BUILDKIT="0")
                return subprocess.run([DOCKER_CLI, "build", "-q", "--network", "none", "-t", "bench/build", ctx], capture_output=True,
                                      text=True, env=env)

            for name, fn in (("dockyard build (context in place)", dy_cli),
                             ("docker CLI 28 -> dockyard (tar upload)", dk_cli)):
                colds, warms = [], []
                for _ in range(args.rounds):
                    dy_prune()
                    colds.append(timed(fn))
                    warms.append(min(timed(fn) for _ in range(3)))
                rows.append((name, statistics.median(colds), statistics.median(warms)))
                print(f"{name:46} cold {rows[-1][1]:.2f}s  no-change {rows[-1][2]:.3f}s", flush=True)
            stand_in = StandIn()
            try:
                ours, floor, added = paired(dk_cli, stand_in, ctx, args.rounds * 4)
            finally:
                stand_in.close()
            rows.append(("docker CLI 28 -> stand-in that only reads", float("nan"), floor))
            print(f"{rows[-1][0]:46} upload only {floor:.3f}s (the client's own cost)", flush=True)
            print(f"{'  paired with it: docker CLI -> dockyard':46} no-change {ours:.3f}s, the daemon adds "
                  f"{added * 1000:.0f} ms (median of {args.rounds * 4} pairs)", flush=True)
            rows.append(("  paired: docker CLI -> dockyard", float("nan"), ours))
            rows.append(("  paired: what the daemon adds", float("nan"), added))
            if DOCKERD:
                real = PrivateDockerd().start()
                _s, _h, archive = d.api("GET", "/images/get?names=busybox:latest", timeout=120)
                real.load(archive)
                variants = [("dockerd 20.10 classic builder", DOCKER_CLI, "0")]
                if DOCKER_IO_CLI:
                    variants.append(("dockerd 20.10 BuildKit (docker 20.10 CLI)", DOCKER_IO_CLI, "1"))
                for name, cli, bk in variants:
                    def real_build(cli: str = cli, bk: str = bk) -> subprocess.CompletedProcess[bytes]:
                        env = dict(real.env, DOCKER_BUILDKIT=bk)  # type: ignore[union-attr]
                        return subprocess.run([cli, "build", "-q", "--network", "none", "-t", "bench/build", ctx], capture_output=True,
                                              env=env, timeout=600)

                    colds, warms = [], []
                    for _ in range(args.rounds):
                        real.docker("rmi", "-f", "bench/build")
                        real.docker("builder", "prune", "-af")
                        real.docker("image", "prune", "-f")
                        colds.append(timed(real_build))
                        warms.append(min(timed(real_build) for _ in range(3)))
                    rows.append((name, statistics.median(colds), statistics.median(warms)))
                    print(f"{name:46} cold {rows[-1][1]:.2f}s  no-change {rows[-1][2]:.3f}s", flush=True)
        finally:
            if real is not None:
                left = real.stop()
                if left:
                    print("dockerd cleanup:", left)
            finish_daemon(d)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"build: FROM busybox + COPY 5000 files / 50 MB + 2 RUN + ENV + CMD; median of {args.rounds} rounds "
          f"(rebuild: best of 3 per round); load {' '.join(load)}")
    print(f"{'':46} {'cold':>8} {'no-change':>10}")
    for name, cold, warm in rows:
        print(f"{name:46} {cold:7.2f}s {warm:9.3f}s".replace("    nans", "       -"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
