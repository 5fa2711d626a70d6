"""`stats`: docker's CPU/memory/network/block figures, one-shot (--no-stream) or a table redrawn each second."""

from __future__ import annotations

import argparse
import threading
import time

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.format.humanize import bytes_size, human_size
from dockyard.cli.format.output import render_list
from dockyard.cli.format.table import truncate_id
from dockyard.client.api_client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
                 "{{.BlockIO}}\t{{.PIDs}}")
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}


class StatsRow:
    """One container's figures as docker computes them from a stats sample."""

    def __init__(self, container: str, sample: dict[str, Any] | None, trunc: bool = True) -> None:
        self.Container = container  # noqa: N815 - docker's template field names
        s = sample or {}
        self._s = s
        self.ID = truncate_id(s.get("id", ""), not trunc) if s else "--"  # noqa: N815
        self.Name = (s.get("name") or "").lstrip("/") or "--"  # noqa: N815
        self._valid = bool(s)

    @property
    def CPUPerc(self) -> str:  # noqa: N802
        if not self._valid:
            return "--"
        cpu = self._s.get("cpu_stats") or {}
        pre = self._s.get("precpu_stats") or {}
        cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - \
            ((pre.get("cpu_usage") or {}).get("total_usage") or 0)
        sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
        online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
        pct = cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
        return f"{pct:.2f}%"

    def _mem(self) -> tuple[float, float]:
        mem = self._s.get("memory_stats") or {}
        usage = float(mem.get("usage") or 0)
        st = mem.get("stats") or {}
        for key in ("total_inactive_file", "inactive_file"):
            if key in st and st[key] < usage:
                usage -= st[key]
                break
        return usage, float(mem.get("limit") or 0)

    @property
    def MemUsage(self) -> str:  # noqa: N802
        if not self._valid:
            return "-- / --"
        usage, limit = self._mem()
        return f"{bytes_size(usage)} / {bytes_size(limit)}"

    @property
    def MemPerc(self) -> str:  # noqa: N802
        if not self._valid:
            return "--"
        usage, limit = self._mem()
        return f"{(usage / limit * 100.0) if limit else 0.0:.2f}%"

    @property
    def NetIO(self) -> str:  # noqa: N802
        if not self._valid:
            return "-- / --"
        rx = tx = 0
        for net in (self._s.get("networks") or {}).values():
            rx += net.get("rx_bytes") or 0
            tx += net.get("tx_bytes") or 0
        return f"{human_size(rx)} / {human_size(tx)}"

    @property
    def BlockIO(self) -> str:  # noqa: N802
        if not self._valid:
            return "-- / --"
        read = write = 0
        for entry in (self._s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
            op = (entry.get("op") or "").lower()
            if op == "read":
                read += entry.get("value") or 0
            elif op == "write":
                write += entry.get("value") or 0
        return f"{human_size(read)} / {human_size(write)}"

    @property
    def PIDs(self) -> str:  # noqa: N802
        if not self._valid:
            return "--"
        return str((self._s.get("pids_stats") or {}).get("current") or 0)

    def __json__(self) -> dict[str, str]:
        keys = ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"]
        return {k: getattr(self, k) for k in keys}


def configure(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard stats [OPTIONS] [CONTAINER...]"
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--format", default="")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def _targets(ctx: CLIContext, ns: argparse.Namespace) -> list[str]:
    if ns.containers:
        return list(ns.containers)
    listing = ctx.client.get("/containers/json", {"all": True if ns.all else None}) or []
    return [c["Id"][:12] for c in listing]


def run(ns: argparse.Namespace, ctx: CLIContext) -> int:
    fmt = "{{json .}}" if ns.format == "json" else ns.format
    names = _targets(ctx, ns)
    samples: dict[str, dict[str, Any] | None] = {n: None for n in names}
    if ns.no_stream:
        errors = []
        for n in names:
            try:
                samples[n] = ctx.client.get(f"/containers/{n}/stats", {"stream": False})
            except APIError as e:
                if not ns.containers:
                    continue
                errors.append(e.message)
        for msg in errors:
            ctx.err.write(f"Error response from daemon: {msg}\n")
        rows = [StatsRow(n, samples[n], not ns.no_trunc) for n in names if samples[n] is not None]
        ctx.out.write(render_list(fmt, rows, HEADERS, DEFAULT_TABLE))
        return 1 if errors else 0
    return _live(ctx, ns, fmt, names, samples)


def _live(ctx: CLIContext, ns: argparse.Namespace, fmt: str, names: list[str],
          samples: dict[str, dict[str, Any] | None]) -> int:
    """One streaming connection per container, the table redrawn every second until interrupted."""
    lock = threading.Lock()
    failed: list[str] = []

    def follow(name: str) -> None:
        try:
            for sample in ctx.client.stream_json("GET", f"/containers/{name}/stats", {"stream": True}):
                with lock:
                    samples[name] = sample
        except APIError as e:
            with lock:
                failed.append(e.message)
                samples.pop(name, None)

    for n in names:
        threading.Thread(target=follow, args=(n,), daemon=True).start()
    try:
        while True:
            time.sleep(1.0)
            with lock:
                if ns.containers and failed and not samples:
                    raise CLIError(f"Error response from daemon: {failed[0]}", 1)
                rows = [StatsRow(n, s, not ns.no_trunc) for n, s in samples.items()]
            ctx.out.write("\033[2J\033[H" + render_list(fmt, rows, HEADERS, DEFAULT_TABLE))
            ctx.out.flush()
    except KeyboardInterrupt:
        return 0
