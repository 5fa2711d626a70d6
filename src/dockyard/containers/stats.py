"""GET /containers/{id}/stats: docker's StatsResponse built from the container's cgroup and netns.

CPU percentages are the client's business (``docker stats`` divides the
cpu delta by the system delta between ``precpu_stats`` and ``cpu_stats``), so
every sample carries the host's total CPU time as ``system_cpu_usage``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from dockyard.runtime.logformat import rfc3339_nano

ZERO_TIME = "0001-01-01T00:00:00Z"
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def system_cpu_ns() -> int:
    """Host CPU time (all CPUs, all states) in ns, from the first line of /proc/stat."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:8]
    return sum(int(f) for f in fields) * _TICK_NS


def host_memory() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def net_dev(pid: int) -> dict[str, dict[str, int]]:
    """Interface counters of the network namespace ``pid`` lives in (loopback left out, as docker does)."""
    out: dict[str, dict[str, int]] = {}
    try:
        with open(f"/proc/{pid}/net/dev") as fh:
            lines = fh.read().splitlines()[2:]
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name == "lo":
            continue
        v = [int(x) for x in rest.split()]
        out[name] = {
            "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
            "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
        }
    return out


def _empty_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(cid: str, name: str) -> dict[str, Any]:
    """What docker answers for a container that is not running."""
    return {
        "name": "/" + name, "id": cid, "read": ZERO_TIME, "preread": ZERO_TIME,
        "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                                          "io_queue_recursive": None, "io_service_time_recursive": None,
                                          "io_wait_time_recursive": None, "io_merged_recursive": None,
                                          "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {}, "cpu_stats": _empty_cpu(), "precpu_stats": _empty_cpu(),
        "memory_stats": {},
    }


def sample(cgroup: Any, pid: int, cid: str, name: str) -> dict[str, Any]:
    """One StatsResponse (precpu_stats/preread left for the caller to fill from the previous one)."""
    raw = cgroup.stats()
    cpu, mem, pids, blkio = raw.get("cpu", {}), raw.get("memory", {}), raw.get("pids", {}), raw.get("blkio", {})
    throttling = cpu.get("throttling") or {}
    cpu_stats = {
        "cpu_usage": {
            "total_usage": cpu.get("usage_total_ns", 0),
            "percpu_usage": cpu.get("usage_percpu_ns") or None,
            "usage_in_kernelmode": cpu.get("system_ns", 0),
            "usage_in_usermode": cpu.get("user_ns", 0),
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": os.cpu_count() or 1,
        "throttling_data": {
            "periods": throttling.get("periods", 0),
            "throttled_periods": throttling.get("throttled_periods", 0),
            "throttled_time": throttling.get("throttled_time_ns", 0),
        },
    }
    limit = int(mem.get("limit") or 0)
    machine = host_memory()
    if not limit or (machine and limit > machine):
        limit = machine
    blk: dict[str, Any] = {
        key: blkio.get(key) or None
        for key in ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
                    "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
                    "io_time_recursive", "sectors_recursive")
    }
    out: dict[str, Any] = {
        "name": "/" + name,
        "id": cid,
        "read": rfc3339_nano(),
        "preread": ZERO_TIME,
        "pids_stats": {"current": pids.get("current", 0), **({"limit": pids["limit"]} if pids.get("limit") else {})},
        "blkio_stats": blk,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats,
        "precpu_stats": _empty_cpu(),
        "memory_stats": {
            "usage": mem.get("usage", 0),
            "max_usage": mem.get("max_usage", 0),
            "stats": mem.get("stats") or {},
            "failcnt": mem.get("failcnt", 0),
            "limit": limit,
        },
    }
    networks = net_dev(pid) if pid else {}
    if networks:
        out["networks"] = networks
    return out


def stats_stream(
    open_cg: Callable[[], Any],
    pid: Callable[[], int],
    cid: str,
    name: str,
    running: Callable[[], bool],
    stream: bool,
    one_shot: bool,
    interval: float = 1.0,
) -> Iterator[bytes]:
    """JSON documents, one per ``interval`` while ``stream`` (until the container stops)."""
    if not running():
        yield json.dumps(empty_stats(cid, name)).encode() + b"\n"
        return
    cg = open_cg()
    prev: dict[str, Any] | None = None
    if not stream and not one_shot:
        prev = sample(cg, pid(), cid, name)  # docker fills precpu_stats even for a single answer
        time.sleep(interval)
    while True:
        try:
            cur = sample(cg, pid(), cid, name)
        except OSError:
            if not running():
                return
            raise
        if prev is not None:
            cur["precpu_stats"] = prev["cpu_stats"]
            cur["preread"] = prev["read"]
        yield json.dumps(cur).encode() + b"\n"
        if not stream:
            return
        prev = cur
        time.sleep(interval)
        if not running():
            return
