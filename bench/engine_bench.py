"""Engine benchmark: `run --rm busybox true` (dockyard CLI and docker CLI), `exec true`, shim and daemon memory.

Starts its own daemon (tests/helpers/daemon.py) on a scratch data root and
removes everything afterwards.  Usage: python bench/engine_bench.py [-n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from helpers.daemon import TestDaemon  # noqa: E402


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    r = fn()
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"command failed: {r.args}: {r.stderr}")
    return elapsed


def _alternate(n: int, named: dict[str, object]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in named}
    for _ in range(n):
        for key, fn in named.items():
            out[key].append(_timed(fn))
    return out


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--shims", type=int, default=5)
    args = ap.parse_args()
    d = TestDaemon().start()
    rows: list[tuple[str, str]] = []
    try:
        d.load_busybox(None)
        d.docker("run", "--rm", "busybox", "true")  # warm the launcher and caches
        runs = _alternate(args.n, {
            "dockyard run --rm busybox true": lambda: d.cli("run", "--rm", "busybox", "true"),
            "docker run --rm busybox true": lambda: d.docker("run", "--rm", "busybox", "true"),
        })
        for key, values in runs.items():
            rows.append((key + " (median)", f"{statistics.median(values) * 1000:.0f} ms"))
        box = d.docker("run", "-d", "busybox", "sleep", "600").stdout.strip()
        execs = _alternate(args.n, {
            "dockyard exec true": lambda: d.cli("exec", box, "true"),
            "docker exec true": lambda: d.docker("exec", box, "true"),
        })
        for key, values in execs.items():
            rows.append((key + " (median)", f"{statistics.median(values) * 1000:.0f} ms"))
        idle = [d.docker("run", "-d", "busybox", "sleep", "600").stdout.strip() for _ in range(args.shims)]
        time.sleep(1.0)
        mems = []
        for cid in idle:
            with open(os.path.join(d.data_root, "containers", cid, "shim.pid")) as fh:
                mems.append(_memory(int(fh.read())))
        for key in ("rss", "pss", "uss"):
            rows.append((f"idle shim {key.upper()} (median of {len(mems)})",
                         f"{statistics.median(m[key] for m in mems) / 1024:.2f} MiB"))
        assert d.proc is not None
        rows.append(("daemon RSS", f"{_memory(d.proc.pid)['rss'] / 1024:.1f} MiB"))
        for cid in [box, *idle]:
            d.docker("rm", "-f", cid)
    finally:
        d.stop()
        d.remove_tmp()
    width = max(len(k) for k, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
