"""`version`, `info`, `events`, `system df`, `system prune`."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime

from dockyard.cli.app import CLIContext
from dockyard.cli.commands.lifecycle import confirm, filters_query
from dockyard.cli.format.humanize import human_size, time_ago
from dockyard.cli.format.output import render_each, render_list
from dockyard.cli.format.table import truncate_id
from dockyard.client.api_client import (
    OUR_API_VERSION,
    APIError,
    DaemonUnreachable,
    NotFound,
    NotImplementedByDaemon,
)

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

# -- version ------------------------------------------------------------------------------------------


def configure_version(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard version [OPTIONS]"
    p.add_argument("-f", "--format", default="")


def run_version(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard import __version__

    client_info = {
        "Platform": {"Name": ""}, "Version": __version__, "ApiVersion": OUR_API_VERSION,
        "DefaultAPIVersion": OUR_API_VERSION, "GitCommit": "", "GoVersion": f"python{platform.python_version()}",
        "Os": "linux", "Arch": _arch(), "BuildTime": "", "Context": "default",
    }
    server: Any = None
    error: str | None = None
    try:
        server = ctx.client.get("/version")
    except (DaemonUnreachable, APIError) as e:
        error = str(e)
    data = {"Client": client_info, "Server": server}
    if ns.format:
        if ns.format == "json":
            ctx.out.write(json.dumps(data) + "\n")
        else:
            from dockyard.cli.format.gostruct import typed_inspect

            ctx.out.write(render_each(ns.format, [typed_inspect("version", data)]))
    else:
        c = client_info
        lines = ["Client:", f" Version:           {c['Version']}", f" API version:       {c['ApiVersion']}",
                 f" Go version:        {c['GoVersion']}", f" Git commit:        {c['GitCommit']}",
                 f" Built:             {c['BuildTime']}", f" OS/Arch:           linux/{c['Arch']}",
                 f" Context:           {c['Context']}", ""]
        if server:
            name = (server.get("Platform") or {}).get("Name") or "dockyard"
            lines += [f"Server: {name}", " Engine:",
                      f"  Version:          {server.get('Version', '')}",
                      f"  API version:      {server.get('ApiVersion', '')} (minimum version "
                      f"{server.get('MinAPIVersion', '')})",
                      f"  Go version:       {server.get('GoVersion', '')}",
                      f"  Git commit:       {server.get('GitCommit', '')}",
                      f"  Built:            {server.get('BuildTime', '')}",
                      f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}",
                      f"  Experimental:     {str(server.get('Experimental', False)).lower()}"]
            for comp in server.get("Components") or []:
                if comp.get("Name") == "Engine":
                    continue
                lines += [f" {comp.get('Name')}:", f"  Version:          {comp.get('Version', '')}"]
        ctx.out.write("\n".join(lines).rstrip("\n") + "\n")
    if error:
        ctx.err.write(error + "\n")
        return 1
    return 0


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


# -- info ---------------------------------------------------------------------------------------------
def configure_info(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard info [OPTIONS]"
    p.add_argument("-f", "--format", default="")


def run_info(ns: argparse.Namespace, ctx: CLIContext) -> int:
    info = ctx.client.get("/info") or {}
    if ns.format:
        ctx.out.write(json.dumps(info) + "\n" if ns.format == "json" else render_each(ns.format, [info]))
        return 0
    w = ctx.out.write
    w("Client:\n Version:    " + _client_version() + "\n Context:    default\n Debug Mode: false\n\n")
    w("Server:\n")
    rows = [
        ("Containers", info.get("Containers", 0)),
        (" Running", info.get("ContainersRunning", 0)),
        (" Paused", info.get("ContainersPaused", 0)),
        (" Stopped", info.get("ContainersStopped", 0)),
        ("Images", info.get("Images", 0)),
        ("Server Version", info.get("ServerVersion", "")),
        ("Storage Driver", info.get("Driver", "")),
        ("Logging Driver", info.get("LoggingDriver", "")),
        ("Cgroup Driver", info.get("CgroupDriver", "")),
        ("Cgroup Version", info.get("CgroupVersion", "")),
    ]
    for k, v in rows:
        w(f" {k}: {v}\n")
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        w(f" Runtimes: {' '.join(sorted(runtimes))}\n")
    w(f" Default Runtime: {info.get('DefaultRuntime', '')}\n")
    if info.get("InitBinary"):
        w(f" Init Binary: {info['InitBinary']}\n")
    sec = info.get("SecurityOptions") or []
    if sec:
        w(" Security Options:\n")
        for opt in sec:
            for part in str(opt).split(","):
                key, _, val = part.partition("=")
                w(f"  {val}\n" if key == "name" else f"   {key.capitalize()}: {val}\n")
    for label, key in (("Kernel Version", "KernelVersion"), ("Operating System", "OperatingSystem"),
                       ("OSType", "OSType"), ("Architecture", "Architecture")):
        w(f" {label}: {info.get(key, '')}\n")
    w(f" CPUs: {info.get('NCPU', 0)}\n")
    w(f" Total Memory: {_bytes_gib(info.get('MemTotal', 0))}\n")
    w(f" Name: {info.get('Name', '')}\n")
    w(f" ID: {info.get('ID', '')}\n")
    w(f" Docker Root Dir: {info.get('DockerRootDir', '')}\n")
    w(f" Debug Mode: {str(bool(info.get('Debug'))).lower()}\n")
    w(f" Experimental: {str(bool(info.get('ExperimentalBuild'))).lower()}\n")
    w(f" Live Restore Enabled: {str(bool(info.get('LiveRestoreEnabled'))).lower()}\n")
    for warning in info.get("Warnings") or []:
        ctx.err.write(f"{warning}\n")
    return 0


def _client_version() -> str:
    from dockyard import __version__

    return __version__


def _bytes_gib(n: int) -> str:
    from dockyard.cli.format.humanize import bytes_size

    return bytes_size(n)


# -- events -------------------------------------------------------------------------------------------
def configure_events(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard events [OPTIONS]"
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--since", default="")
    p.add_argument("--until", default="")


def format_event(ev: dict[str, Any]) -> str:
    """docker's default event line: local RFC 3339 time with nanoseconds, type, action, id, (attributes)."""
    nano = int(ev.get("timeNano") or int(ev.get("time", 0)) * 10**9)
    secs, frac = divmod(nano, 10**9)
    dt = datetime.fromtimestamp(secs).astimezone()
    offset = dt.strftime("%z")
    tz = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    stamp = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}" + tz
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def run_events(ns: argparse.Namespace, ctx: CLIContext) -> int:
    from dockyard.cli.commands.io import docker_timestamp
    from dockyard.util.gotemplate import Template, prepare_format

    query = {"since": docker_timestamp(ns.since) if ns.since else None,
             "until": docker_timestamp(ns.until) if ns.until else None,
             "filters": filters_query(ns.filter)}
    fmt = "{{json .}}" if ns.format == "json" else ns.format
    tpl = Template(prepare_format(fmt)[1]) if fmt else None
    try:
        for ev in ctx.client.stream_json("GET", "/events", query):
            ctx.out.write((tpl.execute(ev) if tpl else format_event(ev)) + "\n")
            ctx.out.flush()
    except KeyboardInterrupt:
        return 0
    return 0


# -- system df ----------------------------------------------------------------------------------------
def configure_df(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard system df [OPTIONS]"
    p.add_argument("--format", default="")
    p.add_argument("-v", "--verbose", action="store_true")


def _hs(n: float) -> str:
    """df uses go-units HumanSize (4 significant digits)."""
    return human_size(n, 4)


class _DfRow:
    def __init__(self, kind: str, total: int, active: int, size: int, reclaimable: int, pct: bool) -> None:
        self.Type = kind  # noqa: N815 - docker's template field names
        self.TotalCount = str(total)  # noqa: N815
        self.Active = str(active)  # noqa: N815
        self.Size = _hs(size)  # noqa: N815
        self.Reclaimable = _hs(reclaimable)  # noqa: N815
        if pct and size > 0:
            self.Reclaimable += f" ({int(reclaimable * 100 / size)}%)"

    def __json__(self) -> dict[str, str]:
        return {"Active": self.Active, "Reclaimable": self.Reclaimable, "Size": self.Size,
                "TotalCount": self.TotalCount, "Type": self.Type}


def df_rows(df: dict[str, Any]) -> list[_DfRow]:
    images = df.get("Images") or []
    img_size = int(df.get("LayersSize") or sum(i.get("Size") or 0 for i in images))
    img_active = sum(1 for i in images if (i.get("Containers") or 0) > 0)
    img_reclaim = img_size - sum((i.get("Size") or 0) - max(i.get("SharedSize") or 0, 0)
                                 for i in images if (i.get("Containers") or 0) > 0)
    containers = df.get("Containers") or []
    c_size = sum(c.get("SizeRw") or 0 for c in containers)
    c_active = sum(1 for c in containers if c.get("State") in ("running", "paused", "restarting"))
    c_reclaim = sum(c.get("SizeRw") or 0 for c in containers
                    if c.get("State") not in ("running", "paused", "restarting"))
    volumes = df.get("Volumes") or []

    def vsize(v: dict[str, Any]) -> int:
        return max(int((v.get("UsageData") or {}).get("Size") or 0), 0)

    def vrefs(v: dict[str, Any]) -> int:
        return int((v.get("UsageData") or {}).get("RefCount") or 0)

    v_size = sum(vsize(v) for v in volumes)
    v_active = sum(1 for v in volumes if vrefs(v) > 0)
    v_reclaim = sum(vsize(v) for v in volumes if vrefs(v) == 0)
    cache = df.get("BuildCache") or []
    b_size = sum(b.get("Size") or 0 for b in cache)
    b_active = sum(1 for b in cache if b.get("InUse"))
    b_reclaim = sum(b.get("Size") or 0 for b in cache if not b.get("InUse") and not b.get("Shared"))
    return [
        _DfRow("Images", len(images), img_active, img_size, max(img_reclaim, 0), True),
        _DfRow("Containers", len(containers), c_active, c_size, c_reclaim, True),
        _DfRow("Local Volumes", len(volumes), v_active, v_size, v_reclaim, True),
        _DfRow("Build Cache", len(cache), b_active, b_size, b_reclaim, False),
    ]


def run_df(ns: argparse.Namespace, ctx: CLIContext) -> int:
    df = ctx.client.get("/system/df") or {}
    fmt = "{{json .}}" if ns.format == "json" else ns.format
    if not ns.verbose:
        headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                   "Reclaimable": "RECLAIMABLE"}
        default = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
        ctx.out.write(render_list(fmt, df_rows(df), headers, default))
        return 0
    from dockyard.cli.format.table import render

    w = ctx.out.write
    w("Images space usage:\n\n")
    rows = []
    for i in df.get("Images") or []:
        tags = i.get("RepoTags") or ["<none>:<none>"]
        repo, _, tag = tags[0].rpartition(":")
        rows.append([repo, tag, truncate_id(i.get("Id", "")), time_ago(float(i.get("Created") or 0)),
                     _hs(i.get("Size") or 0), _hs(max(i.get("SharedSize") or 0, 0)),
                     _hs((i.get("Size") or 0) - max(i.get("SharedSize") or 0, 0)), str(i.get("Containers") or 0)])
    w(render(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
             rows))
    w("\nContainers space usage:\n\n")
    rows = []
    for c in df.get("Containers") or []:
        names = ",".join(n.lstrip("/") for n in c.get("Names") or [])
        cmd = c.get("Command") or ""
        rows.append([truncate_id(c.get("Id", "")), c.get("Image", ""), json.dumps(cmd[:19] + "…" if len(cmd) > 20
                                                                                   else cmd, ensure_ascii=False),
                     str(len(c.get("Mounts") or [])), _hs(c.get("SizeRw") or 0),
                     time_ago(float(c.get("Created") or 0)), c.get("Status", ""), names])
    w(render(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"], rows))
    w("\nLocal Volumes space usage:\n\n")
    rows = [[v.get("Name", ""), str((v.get("UsageData") or {}).get("RefCount", 0)),
             _hs(max((v.get("UsageData") or {}).get("Size") or 0, 0))] for v in df.get("Volumes") or []]
    w(render(["VOLUME NAME", "LINKS", "SIZE"], rows))
    w("\nBuild cache usage: " + _hs(sum(b.get("Size") or 0 for b in df.get("BuildCache") or [])) + "\n\n")
    rows = []
    w(render(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], rows))
    return 0


# -- system prune ---------------------------------------------------------------------------------------
def configure_prune(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard system prune [OPTIONS]"
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--volumes", action="store_true")


def run_prune(ns: argparse.Namespace, ctx: CLIContext) -> int:
    items = ["all stopped containers", "all networks not used by at least one container"]
    if ns.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if ns.all
                 else "all dangling images")
    items.append("unused build cache")
    warning = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if not ns.force and not confirm(ctx, warning):
        return 0
    filters = filters_query(ns.filter)
    client = ctx.client
    reclaimed = 0
    w = ctx.out.write

    def call(path: str, query: dict[str, Any]) -> dict[str, Any]:
        try:
            return client.post(path, query) or {}
        except (NotFound, NotImplementedByDaemon):
            return {}

    res = call("/containers/prune", {"filters": filters})
    reclaimed += res.get("SpaceReclaimed") or 0
    if res.get("ContainersDeleted"):
        w("Deleted Containers:\n" + "".join(f"{c}\n" for c in res["ContainersDeleted"]) + "\n")
    res = call("/networks/prune", {"filters": filters})
    if res.get("NetworksDeleted"):
        w("Deleted Networks:\n" + "".join(f"{n}\n" for n in res["NetworksDeleted"]) + "\n")
    if ns.volumes:
        res = call("/volumes/prune", {"filters": filters})
        reclaimed += res.get("SpaceReclaimed") or 0
        if res.get("VolumesDeleted"):
            w("Deleted Volumes:\n" + "".join(f"{v}\n" for v in res["VolumesDeleted"]) + "\n")
    img_filters = dict(filters or {})
    img_filters["dangling"] = {"false" if ns.all else "true": True}
    res = call("/images/prune", {"filters": img_filters})
    reclaimed += res.get("SpaceReclaimed") or 0
    if res.get("ImagesDeleted"):
        w("Deleted Images:\n")
        for d in res["ImagesDeleted"]:
            for k, label in (("Untagged", "untagged"), ("Deleted", "deleted")):
                if d.get(k):
                    w(f"{label}: {d[k]}\n")
        w("\n")
    res = call("/build/prune", {"all": ns.all or None, "filters": filters})
    reclaimed += res.get("SpaceReclaimed") or 0
    w(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0

