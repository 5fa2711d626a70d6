"""Container lifecycle commands: start, stop, restart, kill, pause, unpause, rm, wait, rename, update, prune."""

from __future__ import annotations

from dockyard.cli.app import CLIContext, CLIError
from dockyard.client.api_client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any


def _each(ctx: CLIContext, names: list[str], action: Callable[[str], Any], verb: str) -> int:  # noqa: ARG001
    """docker's multi-container pattern: print each name that worked, the error of each that didn't."""
    failed: list[str] = []
    for name in names:
        try:
            result = action(name)
        except APIError as e:
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            failed.append(name)
            continue
        ctx.out.write(f"{name if result is None else result}\n")
        ctx.out.flush()
    if failed:
        # docker prints the per-container errors above; the summary line is part of its output too
        return 1
    return 0


def _post(ctx: CLIContext, path: str, query: dict[str, Any] | None = None) -> None:
    ctx.client.request("POST", path, query).data  # noqa: B018 - drain; 204/304 carry no body


def _delete(ctx: CLIContext, path: str, query: dict[str, Any] | None = None) -> None:
    ctx.client.request("DELETE", path, query).data  # noqa: B018


def _containers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


# -- start ------------------------------------------------------------------------------------------
def configure_start(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard start [OPTIONS] CONTAINER [CONTAINER...]"
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--detach-keys", default="")
    _containers_arg(p)


def run_start(ns: argparse.Namespace, ctx: CLIContext) -> int:
    client = ctx.client
    if ns.attach or ns.interactive:
        if len(ns.containers) > 1:
            raise CLIError("you cannot start and attach multiple containers at once", 1)
        from dockyard.cli.commands.run import attach_and_wait

        info = client.get(f"/containers/{ns.containers[0]}/json")
        cid = info["Id"]
        cfg = info.get("Config") or {}
        tty = bool(cfg.get("Tty"))
        stdin = bool(ns.interactive and cfg.get("OpenStdin"))
        conn = client.hijack("POST", f"/containers/{cid}/attach",
                             {"stream": True, "stdin": stdin, "stdout": True, "stderr": True,
                          "detachKeys": ns.detach_keys or None})
        waiter = client.begin("POST", f"/containers/{cid}/wait", {"condition": "next-exit"})
        try:
            client.post(f"/containers/{cid}/start")
        except APIError as e:
            conn.close()
            waiter.close()
            from dockyard.cli.commands.run import start_error_code

            raise CLIError(f"Error response from daemon: {e.message}", start_error_code(e.message)) from None
        return attach_and_wait(ctx, cid, conn, waiter, tty=tty, stdin=stdin, detach_keys=ns.detach_keys,
                               sig_proxy=not tty)
    failed = []
    for name in ns.containers:
        try:
            client.post(f"/containers/{name}/start")
        except APIError as e:
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            failed.append(name)
            continue
        ctx.out.write(f"{name}\n")
    if failed:
        raise CLIError(f"Error: failed to start containers: {', '.join(failed)}", 1)
    return 0


# -- stop / restart / kill --------------------------------------------------------------------------
def _configure_stopish(p: argparse.ArgumentParser, verb: str) -> None:
    p.usage = f"dockyard {verb} [OPTIONS] CONTAINER [CONTAINER...]"
    p.add_argument("-s", "--signal", default="")
    p.add_argument("-t", "--time", "--timeout", type=int, default=None, dest="time")
    _containers_arg(p)


def configure_stop(p: argparse.ArgumentParser) -> None:
    _configure_stopish(p, "stop")


def run_stop(ns: argparse.Namespace, ctx: CLIContext) -> int:
    q = {"t": ns.time, "signal": ns.signal or None}
    return _each(ctx, ns.containers, lambda c: _post(ctx, f"/containers/{c}/stop", q), "stop")


def configure_restart(p: argparse.ArgumentParser) -> None:
    _configure_stopish(p, "restart")


def run_restart(ns: argparse.Namespace, ctx: CLIContext) -> int:
    q = {"t": ns.time, "signal": ns.signal or None}
    return _each(ctx, ns.containers, lambda c: _post(ctx, f"/containers/{c}/restart", q), "restart")


def configure_kill(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard kill [OPTIONS] CONTAINER [CONTAINER...]"
    p.add_argument("-s", "--signal", default="")
    _containers_arg(p)


def run_kill(ns: argparse.Namespace, ctx: CLIContext) -> int:
    q = {"signal": ns.signal or None}
    return _each(ctx, ns.containers, lambda c: _post(ctx, f"/containers/{c}/kill", q), "kill")


def configure_pause(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard pause CONTAINER [CONTAINER...]"
    _containers_arg(p)


def run_pause(ns: argparse.Namespace, ctx: CLIContext) -> int:
    return _each(ctx, ns.containers, lambda c: _post(ctx, f"/containers/{c}/pause"), "pause")


def configure_unpause(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard unpause CONTAINER [CONTAINER...]"
    _containers_arg(p)


def run_unpause(ns: argparse.Namespace, ctx: CLIContext) -> int:
    return _each(ctx, ns.containers, lambda c: _post(ctx, f"/containers/{c}/unpause"), "unpause")


# -- rm -----------------------------------------------------------------------------------------------
def configure_rm(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard rm [OPTIONS] CONTAINER [CONTAINER...]"
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("-l", "--link", action="store_true")
    _containers_arg(p)


def run_rm(ns: argparse.Namespace, ctx: CLIContext) -> int:
    """With --force a container that does not exist is not a failure: docker prints the daemon's error and
    exits 0 (scripts run ``rm -f name`` to make sure it is gone)."""
    q = {"force": ns.force or None, "v": ns.volumes or None, "link": ns.link or None}
    failed = False
    for name in ns.containers:
        try:
            _delete(ctx, f"/containers/{name}", q)
        except APIError as e:
            ctx.err.write(f"Error response from daemon: {e.message}\n")
            failed = failed or not (ns.force and e.status == 404)
            continue
        ctx.out.write(f"{name}\n")
        ctx.out.flush()
    return 1 if failed else 0


# -- wait -------------------------------------------------------------------------------------------
def configure_wait(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard wait CONTAINER [CONTAINER...]"
    _containers_arg(p)


def run_wait(ns: argparse.Namespace, ctx: CLIContext) -> int:
    def wait(c: str) -> int:
        status = ctx.client.post(f"/containers/{c}/wait") or {}
        return int(status.get("StatusCode", 0))

    return _each(ctx, ns.containers, wait, "wait")


# -- rename -------------------------------------------------------------------------------------------
def configure_rename(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard rename CONTAINER NEW_NAME"
    p.add_argument("container")
    p.add_argument("new_name")


def run_rename(ns: argparse.Namespace, ctx: CLIContext) -> int:
    new = ns.new_name.strip()
    if not new:
        raise CLIError("Error: Neither old nor new names may be empty", 1)
    from dockyard.client.api_client import APIError

    try:
        ctx.client.post(f"/containers/{ns.container}/rename", {"name": new})
    except APIError as e:  # docker adds its own line after the daemon's
        raise CLIError(f"Error response from daemon: {e.message}\nError: failed to rename container named "
                       f"{ns.container}", 1) from None
    return 0


# -- update -------------------------------------------------------------------------------------------
def configure_update(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard update [OPTIONS] CONTAINER [CONTAINER...]"
    a = p.add_argument
    a("--blkio-weight", type=int, default=None)
    a("--cpu-period", type=int, default=None)
    a("--cpu-quota", type=int, default=None)
    a("-c", "--cpu-shares", type=int, default=None)
    a("--cpus", default=None)
    a("--cpuset-cpus", default=None)
    a("--cpuset-mems", default=None)
    a("-m", "--memory", default=None)
    a("--memory-reservation", default=None)
    a("--memory-swap", default=None)
    a("--pids-limit", type=int, default=None)
    a("--restart", default=None)
    a("--publish-add", action="append", default=[])
    a("--publish-rm", action="append", default=[])
    _containers_arg(p)


def update_body(ns: argparse.Namespace) -> dict[str, Any]:
    """The POST /containers/{id}/update body: only the flags given (docker sends zero values it ignores)."""
    from dockyard.cli.commands.runflags import _nano_cpus, _restart_policy, parse_publish, ram_in_bytes

    def same(v: Any) -> Any:
        return v

    fields: list[tuple[str, str, Any]] = [
        ("blkio_weight", "BlkioWeight", same), ("cpu_period", "CpuPeriod", same), ("cpu_quota", "CpuQuota", same),
        ("cpu_shares", "CpuShares", same), ("cpus", "NanoCpus", _nano_cpus), ("cpuset_cpus", "CpusetCpus", same),
        ("cpuset_mems", "CpusetMems", same), ("memory", "Memory", ram_in_bytes),
        ("memory_reservation", "MemoryReservation", ram_in_bytes), ("memory_swap", "MemorySwap", ram_in_bytes),
        ("pids_limit", "PidsLimit", same), ("restart", "RestartPolicy", _restart_policy),
    ]
    body: dict[str, Any] = {key: convert(getattr(ns, flag)) for flag, key, convert in fields
                            if getattr(ns, flag) is not None}
    if ns.publish_add:
        adds: dict[str, list[dict[str, str]]] = {}
        for spec in ns.publish_add:
            for cport, ip, hport in parse_publish(spec):
                adds.setdefault(cport, []).append({"HostIp": ip, "HostPort": hport})
        body["PortBindingsAdd"] = adds
    if ns.publish_rm:
        rms: list[str] = []
        for spec in ns.publish_rm:
            rms += [cport for cport, _, _ in parse_publish(spec)]
        body["PortBindingsRemove"] = rms
    return body


def run_update(ns: argparse.Namespace, ctx: CLIContext) -> int:
    body = update_body(ns)

    def update(c: str) -> None:
        resp = ctx.client.post(f"/containers/{c}/update", None, body) or {}
        for w in resp.get("Warnings") or []:
            ctx.err.write(f"WARNING: {w}\n")

    return _each(ctx, ns.containers, update, "update")


# -- container prune -------------------------------------------------------------------------------------
def configure_prune(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard container prune [OPTIONS]"
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])


def filters_query(items: list[str]) -> dict[str, dict[str, bool]] | None:
    """--filter k=v (repeatable) → docker's filters JSON {"k": {"v": true}}."""
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:
            raise CLIError(f'invalid argument "{item}" for "-f, --filter" flag: bad format of filter '
                           "(expected name=value)", 125)
        out.setdefault(k.strip().lower(), {})[v] = True
    return out or None


def confirm(ctx: CLIContext, warning: str) -> bool:
    ctx.out.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    ctx.out.flush()
    answer = ctx.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def run_prune(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.format.humanize import human_size

    if not ns.force and not confirm(ctx, "WARNING! This will remove all stopped containers."):
        return 0
    resp = ctx.client.post("/containers/prune", {"filters": filters_query(ns.filter)}) or {}
    deleted = resp.get("ContainersDeleted") or []
    if deleted:
        ctx.out.write("Deleted Containers:\n")
        for cid in deleted:
            ctx.out.write(f"{cid}\n")
        ctx.out.write("\n")
    ctx.out.write(f"Total reclaimed space: {human_size(resp.get('SpaceReclaimed') or 0)}\n")
    return 0
