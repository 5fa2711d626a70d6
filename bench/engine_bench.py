"""Engine benchmark: run/exec latency, `ps -a` and the container list at 100 and 1000 containers, memory.

One command, one table.  Starts its own dockyard daemon (tests/helpers/daemon.py) on a scratch data root, and where
`dockerd` is installed a private real dockerd (bench/engine_dockerd.py) loaded with the same busybox archive, so
both daemons are timed alternately in the same conditions.  Next to each median wall time it prints the
CPU time of the client and of the dockyard daemon per call, which a loaded host changes far less than wall time.
Everything is removed afterwards, also on failure (and on SIGTERM).
Usage: python bench/engine_bench.py [--quick] [-n 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from engine_dockerd import DOCKER_IO_CLI, DOCKERD, PrivateDockerd  # noqa: E402

from helpers.daemon import TestDaemon  # noqa: E402

Row = tuple[str, str, str]  # measure, value, ratio / target note
TARGET_RUN_MS = 60.0
TARGET_PS_MS = 100.0
TARGET_SHIM_MIB = 2.0


FAILURES: dict[str, list[str]] = {}  # measure -> error text of each failed round (left out of its median)
# measure -> (client CPU s, dockyard daemon CPU s) per successful round: figures the host's load barely changes
CPU: dict[str, list[tuple[float, float]]] = {}
DAEMON_PID: list[int] = []  # the dockyard daemon whose CPU time is counted


def _daemon_cpu() -> float:
    """CPU seconds the dockyard daemon has used, threads that have exited included (/proc/<pid>/stat ticks)."""
    total = 0
    for pid in DAEMON_PID:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _client_cpu() -> tuple[float, float]:
    """CPU seconds of finished child processes (the CLIs) and of this process (the raw API client)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime, me.ru_utime + me.ru_stime


def _timed(key: str, fn: Callable[[], Any]) -> float | None:
    """Seconds one call took, or None (and the error kept for the table) when it failed."""
    (children0, self0), daemon0 = _client_cpu(), _daemon_cpu()
    start = time.perf_counter()
    r = fn()
    elapsed = time.perf_counter() - start
    (children1, self1), daemon1 = _client_cpu(), _daemon_cpu()
    client = children1 - children0 if children1 > children0 else self1 - self0
    CPU.setdefault(key, []).append((client, daemon1 - daemon0))
    status = getattr(r, "returncode", None)
    if status is None:
        status = 0 if r == 200 else r
    if status != 0:
        err = getattr(r, "stderr", "") or ""
        err = err.decode(errors="replace") if isinstance(err, bytes) else str(err)
        FAILURES.setdefault(key, []).append(f"exit {status}: {err.strip().splitlines()[0] if err.strip() else ''}")
        return None
    return elapsed


def _alternate(n: int, named: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median seconds of each callable, run round-robin so load changes hit all of them alike."""
    out: dict[str, list[float]] = {k: [] for k in named}
    for _ in range(n):
        for key, fn in named.items():
            elapsed = _timed(key, fn)
            if elapsed is not None:
                out[key].append(elapsed)
    for key, values in out.items():
        if not values:
            raise RuntimeError(f"every round of {key!r} failed: {FAILURES.get(key)}")
    return {k: statistics.median(v) for k, v in out.items()}


def _ms_cpu(key: str, seconds: float, daemon: bool = True) -> str:
    """Median wall time, with the CPU time per call of the client (median) and of dockyard's daemon (mean)."""
    samples = CPU.pop(key, [])
    if not samples:
        return _ms(seconds)
    client = statistics.median(c for c, _ in samples) * 1000
    if not daemon:
        return f"{_ms(seconds)} (cpu {client:.0f})"
    # the daemon's clock ticks are 10 ms: their mean over the rounds is exact where a median would not be
    return f"{_ms(seconds)} (cpu {client:.0f} + {statistics.fmean(d for _, d in samples) * 1000:.0f})"


def _failed(key: str, n: int) -> str:
    errors = FAILURES.get(key, [])
    return f"{len(errors)}/{n} rounds FAILED ({errors[0]})" if errors else ""


def _join(*notes: str) -> str:
    return "; ".join(x for x in notes if x)


def _memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) in KiB from smaps_rollup."""
    vals: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                vals[parts[0][:-1]] = int(parts[1])
    return {"rss": vals.get("Rss", 0), "pss": vals.get("Pss", 0),
            "uss": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)}


HOST_MEMORY_KEYS = ("AnonPages", "Shmem", "SUnreclaim", "KernelStack", "PageTables")


def _host_memory() -> int:
    """KiB the kernel cannot reclaim: process memory (anon, shmem) plus the kernel's own (slab, stacks, page tables).

    Taken around starting idle containers, its growth is what each one costs the host: its shim and
    processes, and its namespaces, mounts, cgroups and veth in the kernel. Page cache is left out
    (reclaimable, and shared with whatever else the machine does).
    """
    with open("/proc/meminfo") as fh:
        vals = {k.rstrip(":"): int(v) for k, v, *_ in (line.split() for line in fh)}
    return sum(vals.get(k, 0) for k in HOST_MEMORY_KEYS)


def _loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _vs(ours: float, theirs: float | None) -> str:
    if not theirs:
        return ""
    return f"{theirs / ours:.1f}x faster than dockerd" if theirs >= ours else f"{ours / theirs:.1f}x slower than dockerd"


def _target(value: float, limit: float, unit: str) -> str:
    return f"target <= {limit:g} {unit}: {'met' if value <= limit else 'MISSED'} ({value / limit:.2f}x)"


def _fill(d: TestDaemon, total: int) -> None:
    """Create `created` containers through the API until the daemon holds `total` containers."""
    status, listed = d.api_json("GET", "/containers/json?all=1")
    missing = total - len(listed)

    def create(_: int) -> None:
        status, _h, body = d.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
        if status != 201:
            raise RuntimeError(f"create failed: {status} {body!r}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(missing)))


def _remove_created(d: TestDaemon) -> None:
    _status, listed = d.api_json("GET", "/containers/json?all=1&filters=%7B%22status%22%3A%5B%22created%22%5D%7D")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: d.api("DELETE", f"/containers/{c['Id']}?force=1"), listed))


def _ps_rows(d: TestDaemon, count: int, n: int) -> list[Row]:
    _fill(d, count)
    _status, listed = d.api_json("GET", "/containers/json?all=1")
    running = sum(1 for c in listed if c["State"] == "running")
    d.cli("ps", "-a")  # first listing after the burst of creates is not what is measured
    medians = _alternate(n, {
        "dockyard ps -a": lambda: d.cli("ps", "-a"),
        "docker ps -a": lambda: d.docker("ps", "-a"),
        "GET /containers/json?all=1": lambda: d.api("GET", "/containers/json?all=1")[0],
    })
    rows: list[Row] = []
    for key, value in medians.items():
        note = _target(value * 1000, TARGET_PS_MS, "ms") if count >= 1000 and key == "dockyard ps -a" else ""
        rows.append((f"{key}, {len(listed)} containers ({running} running)", _ms_cpu(key, value),
                     _join(note, _failed(key, n))))
        FAILURES.pop(key, None)
    return rows


def _daemon_memory_rows(d: TestDaemon, label: str) -> list[Row]:
    assert d.proc is not None
    mem = _memory(d.proc.pid)
    return [(f"daemon RSS / PSS, {label}", f"{mem['rss'] / 1024:.1f} / {mem['pss'] / 1024:.1f} MiB", "")]


def run_bench(d: TestDaemon, real: PrivateDockerd | None, n: int, quick: bool, shims: int) -> list[Row]:
    rows: list[Row] = []
    assert d.proc is not None
    DAEMON_PID[:] = [d.proc.pid]
    d.load_busybox(None)
    rows += _daemon_memory_rows(d, "idle, busybox loaded")
    if real is not None:
        _status, _h, archive = d.api("GET", "/images/get?names=busybox:latest", timeout=120)
        real.start()
        real.load(archive)
        real.docker("run", "--rm", "--network", "none", "busybox", "true")
    d.docker("run", "--rm", "busybox", "true")  # warm the launcher and caches
    d.docker("run", "--rm", "--network", "none", "busybox", "true")
    runs: dict[str, Callable[[], Any]] = {
        "dockyard run --rm busybox true": lambda: d.cli("run", "--rm", "busybox", "true"),
        "dockyard run --rm --network none busybox true":
            lambda: d.cli("run", "--rm", "--network", "none", "busybox", "true"),
        "docker run --rm busybox true -> dockyard": lambda: d.docker("run", "--rm", "busybox", "true"),
        "docker run --rm --network none busybox true -> dockyard":
            lambda: d.docker("run", "--rm", "--network", "none", "busybox", "true"),
    }
    if real is not None:
        runs["docker run --rm --network none busybox true -> dockerd"] = \
            lambda: real.docker("run", "--rm", "--network", "none", "busybox", "true")
        if DOCKER_IO_CLI:
            runs["docker.io 20.10 CLI run --rm --network none ... -> dockerd"] = \
                lambda: real.docker("run", "--rm", "--network", "none", "busybox", "true", cli=DOCKER_IO_CLI)
    med = _alternate(n, runs)
    theirs = med.get("docker run --rm --network none busybox true -> dockerd")
    for key, value in med.items():
        note = _vs(value, theirs) if "-> dockerd" not in key else ""
        if key == "dockyard run --rm busybox true":
            note = _join(_target(value * 1000, TARGET_RUN_MS, "ms"), note)
        rows.append((key + " (median)", _ms_cpu(key, value, "-> dockerd" not in key), _join(note, _failed(key, n))))

    box = d.docker("run", "-d", "busybox", "sleep", "600").stdout.strip()
    execs: dict[str, Callable[[], Any]] = {
        "dockyard exec true": lambda: d.cli("exec", box, "true"),
        "docker exec true -> dockyard": lambda: d.docker("exec", box, "true"),
    }
    if real is not None:
        real_box = real.docker("run", "-d", "--network", "none", "busybox", "sleep", "600").stdout.decode().strip()
        execs["docker exec true -> dockerd"] = lambda: real.docker("exec", real_box, "true")
    med = _alternate(n, execs)
    theirs = med.get("docker exec true -> dockerd")
    for key, value in med.items():
        rows.append((key + " (median)", _ms_cpu(key, value, "dockerd" not in key),
                     _join(_vs(value, theirs) if "dockerd" not in key else "", _failed(key, n))))
    if real is not None:
        forced = real.stop()
        rows.append(("private dockerd stopped, tmp dir removed", "clean" if not forced else "FORCED",
                     ", ".join(forced)))

    time.sleep(1.0)
    host_before = _host_memory()
    idle = [d.docker("run", "-d", "busybox", "sleep", "600").stdout.strip() for _ in range(shims)]
    time.sleep(1.0)
    per_container = (_host_memory() - host_before) / len(idle) / 1024
    rows.append((f"host memory per idle container (growth over {len(idle)}: {'+'.join(HOST_MEMORY_KEYS)})",
                 f"{per_container:.2f} MiB", _target(per_container, TARGET_SHIM_MIB, "MiB")))
    mems = []
    for cid in idle:
        with open(os.path.join(d.data_root, "containers", cid, "shim.pid")) as fh:
            mems.append(_memory(int(fh.read())))
    for key in ("rss", "pss", "uss"):
        value = statistics.median(m[key] for m in mems) / 1024
        note = _target(value, TARGET_SHIM_MIB, "MiB") if key == "pss" else ""
        rows.append((f"idle shim {key.upper()} (median of {len(mems)})", f"{value:.2f} MiB", note))

    ps_n = n if quick else max(10, n // 2)
    for count in (100,) if quick else (100, 1000):
        rows += _ps_rows(d, count, ps_n)
        rows += _daemon_memory_rows(d, f"{count} containers")
    _remove_created(d)
    for cid in [box, *idle]:
        d.docker("rm", "-f", cid)
    return rows


def _print(rows: list[Row]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'measure'.ljust(w0)}  {'value'.ljust(w1)}  ratio / target")
    for key, value, note in rows:
        print(f"{key.ljust(w0)}  {value.ljust(w1)}  {note}".rstrip())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=None, help="rounds per timing (default 20, 5 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 rounds, 100 containers only")
    ap.add_argument("--shims", type=int, default=20, help="idle containers for the memory figures")
    ap.add_argument("--no-dockerd", action="store_true", help="skip the real dockerd comparison")
    args = ap.parse_args()
    n = args.n or (5 if args.quick else 20)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SIGTERM unwinds through the cleanup below
    load_before = _loadavg()
    started = time.monotonic()
    d = TestDaemon(["--log-level", "info"])
    real = PrivateDockerd() if DOCKERD and not args.no_dockerd else None
    rows: list[Row] = []
    try:
        d.start()
        rows = run_bench(d, real, n, args.quick, args.shims)
    finally:
        forced_real = real.stop() if real is not None else []
        forced = d.stop()
        left = d.leftovers()
        d.remove_tmp()
        left += [f"dir {t}" for t in (d.tmp, real.tmp if real else "") if t and os.path.exists(t)]
    rows.append(("dockyard daemon stopped, host clean", "clean" if not (forced or left) else "FORCED",
                 ", ".join(forced + left)))
    if forced_real:
        rows.append(("private dockerd cleanup", "FORCED", ", ".join(forced_real)))
    if real is None:
        rows.append(("docker + dockerd", "not run", "--no-dockerd" if DOCKERD else "dockerd not installed"))
    rows.append(("podman", "not run" if shutil.which("podman") else "not installed", ""))
    rows.append(("load average (1/5/15 min) before / after", f"{load_before} / {_loadavg()}", ""))
    rows.append(("(cpu a + b)", "CPU ms per call", "a: the CLI, median (this script for GET); b: dockyard daemon process only, mean"))
    rows.append(("rounds per timing; wall time", f"n={n}; {time.monotonic() - started:.0f} s",
                 "--quick" if args.quick else ""))
    _print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
