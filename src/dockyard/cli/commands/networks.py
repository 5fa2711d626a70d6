"""Network commands: network create/ls/inspect/rm/connect/disconnect/prune, and `port`."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any
from urllib.parse import quote

from dockyard.cli.app import CLIContext, CLIError
from dockyard.cli.commands.inspect import inspect_each
from dockyard.cli.commands.lifecycle import confirm, filters_query
from dockyard.cli.commands.objlist import labels_text, remove_each, write_list
from dockyard.cli.format.output import Row, go_time_string
from dockyard.cli.format.table import truncate_id


def _q(name: str) -> str:
    return quote(name, safe="")


def _kv_list(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k:
            raise CLIError(f'invalid argument "{item}" for "{flag}" flag', 125)
        out[k] = v if sep else ""
    return out


# ------------------------------------------------------------------------------------------ create
def configure_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NETWORK")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--aux-address", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--ingress", action="store_true")
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--ipv4", default="true", nargs="?", const="true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--ipam-driver", default="default")
    p.add_argument("--ipam-opt", action="append", default=[])
    p.add_argument("--scope", default="")
    p.add_argument("--config-only", action="store_true")
    p.add_argument("--config-from", default="")


def _ipam_configs(args: argparse.Namespace) -> list[dict[str, str]]:
    """Pair --gateway/--ip-range with the --subnet containing them, as docker's CLI does."""
    if (args.gateway or args.ip_range) and not args.subnet:
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    configs = [{"Subnet": s} for s in args.subnet]
    nets = []
    for s in args.subnet:
        try:
            nets.append(ipaddress.ip_network(s, strict=False))
        except ValueError:
            raise CLIError(f'invalid argument "{s}" for "--subnet" flag: invalid CIDR address: {s}', 125) from None
    for key, values in (("Gateway", args.gateway), ("IPRange", args.ip_range)):
        for v in values:
            for cfg, net in zip(configs, nets, strict=True):
                if _inside(v, net, key == "IPRange"):
                    if key in cfg:
                        raise CLIError(f"cannot configure multiple {key.lower()}s for the same subnet")
                    cfg[key] = v
                    break
            else:
                raise CLIError(f"no matching subnet for {'gateway' if key == 'Gateway' else 'range'} {v}")
    return configs


def _inside(value: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network, is_range: bool) -> bool:
    try:
        if is_range:
            sub = ipaddress.ip_network(value, strict=False)
            return sub.version == net.version and sub.subnet_of(net)  # type: ignore[arg-type]
        return ipaddress.ip_address(value) in net
    except ValueError:
        raise CLIError(f"invalid {'ip-range' if is_range else 'gateway'} {value}", 125) from None


def run_create(args: argparse.Namespace, ctx: CLIContext) -> int:
    body: dict[str, Any] = {
        "Name": args.name, "Driver": args.driver, "CheckDuplicate": True,
        "Internal": args.internal, "Attachable": args.attachable, "Ingress": args.ingress,
        "EnableIPv6": args.ipv6, "ConfigOnly": args.config_only,
        "IPAM": {"Driver": args.ipam_driver, "Config": _ipam_configs(args),
                 "Options": _kv_list(args.ipam_opt, "--ipam-opt")},
        "Options": _kv_list(args.opt, "--opt"), "Labels": _kv_list(args.label, "--label"),
    }
    if args.scope:
        body["Scope"] = args.scope
    if args.config_from:
        body["ConfigFrom"] = {"Network": args.config_from}
    out = ctx.client.post("/networks/create", body=body)
    ctx.out.write(out["Id"] + "\n")
    return 0


# ------------------------------------------------------------------------------------------ ls
_LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
               "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")


def run_ls(args: argparse.Namespace, ctx: CLIContext) -> int:
    nets = sorted(ctx.client.get("/networks", {"filters": filters_query(args.filter)}), key=lambda n: n["Name"])
    rows = []
    for n in nets:
        rows.append(Row({"ID": truncate_id(n["Id"], args.no_trunc), "Name": n["Name"], "Driver": n["Driver"],
                         "Scope": n["Scope"], "IPv4": str(n.get("EnableIPv4", True)).lower(),
                         "IPv6": str(n.get("EnableIPv6", False)).lower(), "Internal": str(n["Internal"]).lower(),
                         "Labels": labels_text(n.get("Labels")),
                         "CreatedAt": go_time_string(n.get("Created", ""))}))
    write_list(ctx, rows, fmt=args.format, quiet=args.quiet, key="ID", headers=_LS_HEADERS,
               default_table="table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
    return 0


# ------------------------------------------------------------------------------------------ inspect
def configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p.add_argument("-f", "--format", default="")
    p.add_argument("-v", "--verbose", action="store_true")


def run_inspect(args: argparse.Namespace, ctx: CLIContext) -> int:
    verbose = "?verbose=1" if args.verbose else ""
    return inspect_each(ctx, "network", [f"/networks/{_q(name)}{verbose}" for name in args.networks], args.format)


# ------------------------------------------------------------------------------------------ rm
def configure_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p.add_argument("-f", "--force", action="store_true")


def run_rm(args: argparse.Namespace, ctx: CLIContext) -> int:
    return remove_each(ctx, [(name, f"/networks/{_q(name)}") for name in args.networks], missing_ok=args.force,
                       status_line=True)


# ------------------------------------------------------------------------------------------ connect
def configure_connect(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--ip6", default="")
    p.add_argument("--link", action="append", default=[])
    p.add_argument("--link-local-ip", action="append", default=[])
    p.add_argument("--driver-opt", action="append", default=[])
    p.add_argument("--gw-priority", type=int, default=0)


def run_connect(args: argparse.Namespace, ctx: CLIContext) -> int:
    given = (("IPv4Address", args.ip), ("IPv6Address", args.ip6), ("LinkLocalIPs", args.link_local_ip))
    ipam: dict[str, Any] = {key: value for key, value in given if value}
    endpoint: dict[str, Any] = {"IPAMConfig": ipam or None, "Aliases": args.alias or None,
                                "Links": args.link or None,
                                "DriverOpts": _kv_list(args.driver_opt, "--driver-opt") or None}
    if args.gw_priority:
        endpoint["GwPriority"] = args.gw_priority
    ctx.client.request("POST", f"/networks/{_q(args.network)}/connect",
                       body={"Container": args.container, "EndpointConfig": endpoint}).close()
    return 0


# ------------------------------------------------------------------------------------------ disconnect
def configure_disconnect(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true")


def run_disconnect(args: argparse.Namespace, ctx: CLIContext) -> int:
    ctx.client.request("POST", f"/networks/{_q(args.network)}/disconnect",
                       body={"Container": args.container, "Force": args.force}).close()
    return 0


# ------------------------------------------------------------------------------------------ prune
def configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])


def run_prune(args: argparse.Namespace, ctx: CLIContext) -> int:
    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not args.force and not confirm(ctx, warning):
        return 0
    out = ctx.client.post("/networks/prune", {"filters": filters_query(args.filter)})
    deleted = out.get("NetworksDeleted") or []
    if deleted:
        ctx.out.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted))
    return 0


# ------------------------------------------------------------------------------------------ port
def configure_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def _port_sort_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def run_port(args: argparse.Namespace, ctx: CLIContext) -> int:
    info = ctx.client.get(f"/containers/{_q(args.container)}/json")
    ports: dict[str, Any] = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if args.private_port:
        port, _, proto = args.private_port.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        binds = ports.get(key)
        if not binds:
            raise CLIError(f"Error: No public port '{args.private_port}' published for {args.container}")
        for b in binds:
            ctx.out.write(f"{_host(b)}\n")
        return 0
    for key in sorted(ports, key=_port_sort_key):
        for b in ports[key] or []:
            ctx.out.write(f"{key} -> {_host(b)}\n")
    return 0


def _host(binding: dict[str, str]) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    return f"[{ip}]:{binding['HostPort']}" if ":" in ip else f"{ip}:{binding['HostPort']}"
