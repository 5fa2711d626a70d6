"""Registry throughput: `dockyard registry serve` beside distribution (Debian's docker-registry), in one run.

Both servers get the same content (pushed over HTTP): a 200 MB incompressible blob, and an image whose one
gzip layer holds 5000 small files. Then, at 1, 8 and 32 concurrent clients and with the same clients for both:
  - 200 MB blob: that many `curl` processes each download the blob (8 times in a row for one client, twice
    for four…; aggregate MB/s);
  - 5000-file image: that many clients each running `skopeo copy docker://… dir:` pulls of the whole image
    (64 in a row for one client, at least 2 each; images/s);
  - small manifests: ApacheBench (`ab -k`) GETs of a manifest by tag (requests/s).
Each figure is the median of ``--rounds`` measurements, the two servers taking turns within a round (who goes
first alternates), so a busy moment of the machine hits both alike. Beside each figure: the server's own CPU
time per operation (its whole process tree, from /proc), which shows what the server costs apart from the
clients that share the machine with it, and the load average before and after. Our server runs with its
defaults (2 workers × 32 threads) and the rate limiter on, set high enough not to refuse the load generator.
Run as root (ports on 127.0.0.1 only):

    .venv/bin/python bench/registry_bench.py [--big-mb 200] [--small-files 5000] [--clients 1,8,32] [--rounds 5] [--tls]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable

VENV_BIN = os.path.dirname(sys.executable)
REPO = "bench/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TLS: tuple[str, str] | None = None  # (cert, key) when --tls: both servers serve HTTPS with it


def scheme() -> str:
    return "https" if TLS else "http"


def connect(port: int, timeout: float) -> http.client.HTTPConnection:
    if TLS:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def make_cert(d: str) -> tuple[str, str]:
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            c = connect(port, 2)
            c.request("GET", "/v2/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not come up")


def start_ours(root: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = open(os.path.join(root, "..", "ours.log"), "ab")  # noqa: SIM115
    p = subprocess.Popen([os.path.join(VENV_BIN, "dockyard"), "registry", "serve", "--addr", f"127.0.0.1:{port}",
                          "--root", root, "--rate-limit", "1000000", "--log-level", "warn",
                          *(["--tls-cert", TLS[0], "--tls-key", TLS[1]] if TLS else [])],
                         stdout=log, stderr=log, start_new_session=True)
    wait_up(port, p)
    return p, port


def start_distribution(root: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = os.path.join(root, "..", "distribution.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\n")
        if TLS:
            f.write(f"  tls:\n    certificate: {TLS[0]}\n    key: {TLS[1]}\n")
    log = open(os.path.join(root, "..", "distribution.log"), "ab")  # noqa: SIM115
    p = subprocess.Popen(["/usr/bin/docker-registry", "serve", cfg], stdout=log, stderr=log, start_new_session=True)
    wait_up(port, p)
    return p, port


def tree_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in the server's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, …, utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def stop(p: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def push_blob(port: int, path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    digest, size = "sha256:" + h.hexdigest(), os.path.getsize(path)
    c = connect(port, 300)
    c.request("POST", f"/v2/{REPO}/blobs/uploads/")
    r = c.getresponse()
    r.read()
    loc = r.getheader("Location") or ""
    loc = re.sub(r"^https?://[^/]+", "", loc)
    with open(path, "rb") as f:
        c.request("PUT", loc + ("&" if "?" in loc else "?") + f"digest={digest}", body=f,
                  headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        r.read()
    c.close()
    if r.status != 201:
        raise RuntimeError(f"blob push: {r.status}")
    return digest, size


def push_image(port: int, tag: str, layer_path: str, tmp: str) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cpath = os.path.join(tmp, "config.json")
    with open(cpath, "wb") as f:
        f.write(config)
    cd, cs = push_blob(port, cpath)
    ld, ls = push_blob(port, layer_path)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld,
                                       "size": ls}]}).encode()
    c = connect(port, 60)
    c.request("PUT", f"/v2/{REPO}/manifests/{tag}", body=manifest, headers={"Content-Type": OCI_MANIFEST})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        raise RuntimeError(f"manifest push: {r.status}")


def parallel(n: int, argv: Callable[[int], list[str]]) -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen(argv(i), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{argv(0)[0]} failed: {err.decode()[-300:]}")
    return time.perf_counter() - start


def bench_blob(port: int, digest: str, size: int, n: int) -> tuple[float, int]:
    """``n`` curl processes, each downloading the blob ``max(1, 8 // n)`` times in a row: (MB/s, downloads)."""
    url = f"{scheme()}://127.0.0.1:{port}/v2/{REPO}/blobs/{digest}"
    k = max(1, 8 // n)
    t = parallel(n, lambda i: ["curl", "-skf"] + ["-o", "/dev/null", url] * k)
    return n * k * size / t / 1e6, n * k


def bench_image(port: int, n: int, tmp: str) -> tuple[float, int]:
    """``n`` clients, each pulling the image with skopeo ``max(2, 64 // n)`` times in a row: (pulls/s, pulls)."""
    k = max(2, 64 // n)
    dests = [os.path.join(tmp, f"pull{i}") for i in range(n)]

    def client(i: int) -> list[str]:
        pull = (f"skopeo --insecure-policy copy -q --src-tls-verify=false docker://127.0.0.1:{port}/{REPO}:small "
                f"dir:{dests[i]} && rm -rf {dests[i]}")
        return ["sh", "-ec", f"for i in $(seq {k}); do {pull}; done"]

    t = parallel(n, client)
    for d in dests:
        shutil.rmtree(d, ignore_errors=True)
    return n * k / t, n * k


def bench_manifest(port: int, n: int, seconds: int) -> tuple[float, int]:
    r = subprocess.run(["ab", "-k", "-q", "-c", str(n), "-t", str(seconds), "-n", "10000000", "-H", f"Accept: {OCI_MANIFEST}",
                        f"{scheme()}://127.0.0.1:{port}/v2/{REPO}/manifests/small"], capture_output=True, text=True)
    m = re.search(r"Requests per second:\s+([\d.]+)", r.stdout)
    done = re.search(r"Complete requests:\s+(\d+)", r.stdout)
    failed = re.search(r"Non-2xx responses:\s+(\d+)", r.stdout)
    if not m or not done or failed:
        raise RuntimeError(f"ab: {r.stdout[-500:]} {r.stderr[-300:]}")
    return float(m.group(1)), int(done.group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small-files", type=int, default=5000)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--seconds", type=int, default=4, help="how long ab GETs manifests per measurement")
    ap.add_argument("--tls", action="store_true", help="both servers serve HTTPS (no sendfile for ours then)")
    ap.add_argument("--rounds", type=int, default=5, help="measurements per figure (the median counts)")
    a = ap.parse_args()
    clients = [int(x) for x in a.clients.split(",")]
    tmp = tempfile.mkdtemp(prefix="dyregbench", dir="/var/tmp")
    global TLS
    if a.tls:
        TLS = make_cert(tmp)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            for _ in range(a.big_mb):
                f.write(os.urandom(1 << 20))
        buf = io.BytesIO()
        rnd = os.urandom(4096)
        with tarfile.open(fileobj=buf, mode="w") as t:
            for i in range(a.small_files):
                ti = tarfile.TarInfo(f"d{i % 50:02d}/f{i}")
                data = rnd[: 512 + (i * 37) % 3500]
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        small = os.path.join(tmp, "small.tar.gz")
        with open(small, "wb") as f:
            f.write(gzip.compress(buf.getvalue(), 6))
        small_size = os.path.getsize(small)
        os.makedirs(os.path.join(tmp, "ours"))
        os.makedirs(os.path.join(tmp, "distribution"))
        ours, oport = start_ours(os.path.join(tmp, "ours"))
        servers.append(ours)
        dist, dport = start_distribution(os.path.join(tmp, "distribution"))
        servers.append(dist)
        ports = {"dockyard": oport, "distribution": dport}
        blob: dict[str, tuple[str, int]] = {}
        for name, port in ports.items():
            blob[name] = push_blob(port, big)
            push_image(port, "small", small, tmp)
            bench_blob(port, *blob[name], 1)  # warm the page cache
        pgids = {"dockyard": ours.pid, "distribution": dist.pid}
        measures: dict[str, Callable[[str, int], tuple[float, int]]] = {
            "blob": lambda name, n: bench_blob(ports[name], *blob[name], n),
            "image": lambda name, n: bench_image(ports[name], n, tmp),
            "manifest": lambda name, n: bench_manifest(ports[name], n, a.seconds),
        }
        # (median figure, median server CPU ms per operation) per server, kind and client count
        results: dict[tuple[str, str, int], tuple[float, float]] = {}
        load_before = load()
        for n in clients:
            for key, measure in measures.items():
                got: dict[str, list[tuple[float, float]]] = {name: [] for name in ports}
                for rnd in range(a.rounds):
                    order = list(ports) if rnd % 2 == 0 else list(reversed(ports))
                    for name in order:
                        cpu0 = tree_cpu(pgids[name])
                        figure, ops = measure(name, n)
                        got[name].append((figure, (tree_cpu(pgids[name]) - cpu0) * 1000 / ops))
                for name in ports:
                    results[(name, key, n)] = (statistics.median(f for f, _ in got[name]),
                                               statistics.median(c for _, c in got[name]))
        print(f"registry: {a.big_mb} MB blob, {a.small_files}-file image ({small_size / 1e6:.1f} MB gzip layer), "
              f"small manifest, {scheme().upper()}; {os.cpu_count()} CPUs, median of {a.rounds} rounds, load average {load_before} "
              f"before, {load()} after")
        print(f"{'':34}" + "".join(f"{f'{n} client' + ('s' if n > 1 else ''):>34}" for n in clients))
        rows = [(f"{a.big_mb} MB blob MB/s", "blob", "{:.0f}"), (f"{a.small_files}-file image pulls/s", "image", "{:.2f}"),
                ("manifest GET req/s", "manifest", "{:.0f}")]
        for label, key, fmt in rows:
            cells, cpus = [], []
            for n in clients:
                (o, oc), (d, dc) = results[("dockyard", key, n)], results[("distribution", key, n)]
                cells.append(f"{fmt.format(o)} / {fmt.format(d)} ({o / d:.2f}x)")
                cpus.append(f"{oc:.2f} / {dc:.2f}")
            print(f"{label + ' (ours/dist)':34}" + "".join(f"{c:>34}" for c in cells))
            print(f"{'  server CPU ms per op':34}" + "".join(f"{c:>34}" for c in cpus))
        return 0
    finally:
        for p in servers:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
