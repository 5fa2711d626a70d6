"""`ps` (container ls): docker's columns, filters, --format fields and truncation rules."""

from __future__ import annotations

import time

from dockyard.cli.app import CLIContext
from dockyard.cli.commands.lifecycle import filters_query
from dockyard.cli.format.humanize import format_rfc3339_local, human_duration, human_size
from dockyard.cli.format.output import render_list
from dockyard.cli.format.table import ellipsis, truncate_id
from dockyard.util import cjson

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import argparse
    from typing import Any

DEFAULT_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Size": "SIZE",
    "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE",
    "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
}


def display_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts: "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 53/udp", consecutive runs grouped."""
    groups: dict[str, list[tuple[int, int]]] = {}
    order: list[str] = []
    for p in sorted(ports, key=lambda p: (p.get("Type", "tcp"), p.get("IP", ""), p.get("PublicPort") or 0,
                                          p.get("PrivatePort") or 0)):
        proto = p.get("Type", "tcp")
        ip = p.get("IP") or ""
        if p.get("PublicPort"):
            host = f"[{ip}]" if ":" in ip else ip
            key = f"{host}:|{proto}"
            pair = (int(p["PublicPort"]), int(p["PrivatePort"]))
        else:
            key = f"|{proto}"
            pair = (0, int(p["PrivatePort"]))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(pair)
    out: list[str] = []
    for key in order:
        host, proto = key.split("|")
        runs: list[list[tuple[int, int]]] = []
        for pair in sorted(set(groups[key])):
            last = runs[-1][-1] if runs else None
            if last and pair[1] == last[1] + 1 and (pair[0] == 0 or pair[0] == last[0] + 1):
                runs[-1].append(pair)
            else:
                runs.append([pair])
        for run in runs:
            priv = f"{run[0][1]}" if len(run) == 1 else f"{run[0][1]}-{run[-1][1]}"
            if host:
                pub = f"{run[0][0]}" if len(run) == 1 else f"{run[0][0]}-{run[-1][0]}"
                out.append(f"{host}{pub}->{priv}/{proto}")
            else:
                out.append(f"{priv}/{proto}")
    return ", ".join(out)


class ContainerRow:
    __gotype__ = "*formatter.ContainerContext"  # the docker CLI's row type, named in template errors
    """The fields docker's ps templates see (.ID, .Names, .Label "k" …), from one /containers/json entry."""

    def __init__(self, c: dict[str, Any], trunc: bool = True, now: float | None = None) -> None:
        self._c = c
        self._trunc = trunc
        self._now = time.time() if now is None else now

    @property
    def ID(self) -> str:  # noqa: N802 - docker's template field names
        return truncate_id(self._c.get("Id", ""), not self._trunc)

    @property
    def Names(self) -> str:  # noqa: N802
        names = [n[1:] if n.startswith("/") else n for n in self._c.get("Names") or []]
        if self._trunc:
            names = [n for n in names if "/" not in n][:1] or names[:1]
        return ",".join(names)

    @property
    def Image(self) -> str:  # noqa: N802
        image = self._c.get("Image") or "<no image>"
        if self._trunc:
            if image.startswith("sha256:"):
                return truncate_id(image)
            if "@" in image:
                image = image.split("@", 1)[0]
        return str(image)

    @property
    def Command(self) -> str:  # noqa: N802
        command = self._c.get("Command") or ""
        if self._trunc:
            command = ellipsis(command, 20)
        return cjson.quote(command, ensure_ascii=False)

    @property
    def CreatedAt(self) -> str:  # noqa: N802
        return format_rfc3339_local(float(self._c.get("Created") or 0))

    @property
    def RunningFor(self) -> str:  # noqa: N802
        created = float(self._c.get("Created") or 0)
        return human_duration(max(0.0, self._now - created)) + " ago"

    @property
    def Ports(self) -> str:  # noqa: N802
        return display_ports(self._c.get("Ports") or [])

    @property
    def Status(self) -> str:  # noqa: N802
        return str(self._c.get("Status") or "")

    @property
    def State(self) -> str:  # noqa: N802
        return str(self._c.get("State") or "")

    @property
    def Size(self) -> str:  # noqa: N802
        srw = int(self._c.get("SizeRw") or 0)
        root = int(self._c.get("SizeRootFs") or 0)
        text = human_size(srw)
        if root > 0:
            text += f" (virtual {human_size(root)})"
        return text

    @property
    def Labels(self) -> str:  # noqa: N802
        labels = self._c.get("Labels") or {}
        return ",".join(f"{k}={labels[k]}" for k in sorted(labels))

    def Label(self, name: str) -> str:  # noqa: N802
        return str((self._c.get("Labels") or {}).get(name, ""))

    @property
    def Mounts(self) -> str:  # noqa: N802
        names = []
        for m in self._c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source") or ""
            if self._trunc and not m.get("Name"):
                name = ellipsis(name, 15)
            names.append(name)
        return ",".join(names)

    @property
    def LocalVolumes(self) -> str:  # noqa: N802
        return str(sum(1 for m in self._c.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Networks(self) -> str:  # noqa: N802
        nets = ((self._c.get("NetworkSettings") or {}).get("Networks") or {})
        return ",".join(sorted(nets))

    @property
    def Platform(self) -> str:  # noqa: N802
        return ""

    def __json__(self) -> dict[str, str | None]:
        keys = ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
                "Platform", "Ports", "RunningFor", "Size", "State", "Status"]
        out: dict[str, str | None] = {k: getattr(self, k) for k in keys}
        out["Platform"] = None  # docker marshals the (unset) platform pointer as null
        return out


def configure(p: argparse.ArgumentParser) -> None:
    p.usage = "dockyard ps [OPTIONS]"
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-s", "--size", action="store_true")


def run(ns: argparse.Namespace, ctx: CLIContext) -> int:
    limit = 1 if ns.latest else ns.last
    fmt = ns.format
    if fmt == "json":
        fmt = "{{json .}}"
    # like docker, ask the daemon for sizes when the template uses .Size (`json .` uses every field)
    size = ns.size or (not ns.quiet and (".Size" in fmt or "json ." in fmt.replace("  ", " ")))
    query: dict[str, Any] = {
        "all": True if (ns.all or limit > 0) else None,
        "limit": limit if limit > 0 else None,
        "size": True if size else None,
        "filters": filters_query(ns.filter),
    }
    containers = ctx.client.get("/containers/json", query) or []
    rows = [ContainerRow(c, trunc=not ns.no_trunc) for c in containers]
    if ns.quiet and not fmt:
        fmt = "{{.ID}}"
    default = DEFAULT_TABLE + ("\t{{.Size}}" if ns.size else "")
    # docker ps parses its template up front, in words of its own
    ctx.out.write(render_list(fmt, rows, HEADERS, default, parse_error="failed to parse template"))
    return 0
