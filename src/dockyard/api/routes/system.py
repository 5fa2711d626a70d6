"""System routes: /_ping, /version, /info, /events, /system/df — shaped as dockerd answers them."""

from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dockyard import API_VERSION, MIN_API_VERSION, __version__
from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import JSON, Raw, Stream
from dockyard.api.router import Router
from dockyard.containers.state import parse_api_time as _parse_time
from dockyard.errors import InvalidParameter

_PING_HEADERS = {"Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
_GIT_COMMIT = "dockyard"


def _build_time() -> str:
    """When the installed package was written (its __init__ file's mtime): the nearest thing to a build time."""
    import datetime

    import dockyard

    t = os.stat(dockyard.__file__).st_mtime
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000+00:00")


_BUILD_TIME = _build_time()


def _py_version() -> str:
    return f"python{platform.python_version()}"


def _os_release() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _daemon_id(s: Services) -> str:
    path = os.path.join(s.config.data_root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        import uuid

        ident = str(uuid.uuid4()).upper()
        with open(path, "w") as f:
            f.write(ident)
        return ident


def _registry_config(insecure: list[str], mirrors: list[str]) -> dict[str, Any]:
    """docker's ServiceConfig: insecure CIDRs (loopback last, always), insecure names as index configs, and the
    docker.io mirrors with the trailing slash docker normalizes them to."""
    import ipaddress

    cidrs: list[str] = []
    names: list[str] = []
    for entry in insecure:
        try:
            net = str(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.append(entry)
            continue
        if net not in cidrs:
            cidrs.append(net)
    if "127.0.0.0/8" not in cidrs:
        cidrs.append("127.0.0.0/8")
    norm = [m.rstrip("/") + "/" for m in mirrors]
    index: dict[str, Any] = {"docker.io": {"Name": "docker.io", "Mirrors": norm, "Secure": True, "Official": True}}
    for name in names:
        index[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
    return {"InsecureRegistryCIDRs": cidrs, "IndexConfigs": index, "Mirrors": norm}


def register(r: Router, s: Services) -> None:
    @r.get("/_ping")
    def ping(req: Request) -> Raw:
        return Raw(b"OK", "text/plain; charset=utf-8", 200, dict(_PING_HEADERS))

    @r.head("/_ping")
    def ping_head(req: Request) -> Raw:
        return Raw(b"OK", "text/plain; charset=utf-8", 200, dict(_PING_HEADERS))

    @r.get("/version")
    def version(req: Request) -> JSON:
        uname = os.uname()
        details = {"ApiVersion": API_VERSION, "Arch": _arch(), "BuildTime": _BUILD_TIME, "Experimental": "false",
                   "GitCommit": _GIT_COMMIT, "GoVersion": _py_version(), "KernelVersion": uname.release,
                   "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
        return JSON({
            "Platform": {"Name": "dockyard engine"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": _GIT_COMMIT, "GoVersion": _py_version(), "Os": "linux", "Arch": _arch(),
            "KernelVersion": uname.release, "BuildTime": _BUILD_TIME,
        })

    @r.get("/info")
    def info(req: Request) -> JSON:
        cfg = s.config
        counts = s.containers.counts()
        try:
            images = len({i["Id"] for i in s.images.list_images(all_=True)})  # docker counts every image
        except Exception:  # noqa: BLE001 - a count must never break /info
            images = 0
        runtimes = {"dockyard": {"path": "dockyard"}, "runc": {"path": "runc"}, "crun": {"path": "crun"}}
        uname = os.uname()
        return JSON({
            "ID": _daemon_id(s), "Containers": counts.get("total", 0), "ContainersRunning": counts.get("running", 0),
            "ContainersPaused": counts.get("paused", 0), "ContainersStopped": counts.get("stopped", 0),
            "Images": images, "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "DockerRootDir": cfg.data_root, "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                                                        "Authorization": None, "Log": ["json-file", "local", "none"]},
            "MemoryLimit": True, "SwapLimit": True, "KernelMemoryTCP": False, "CpuCfsPeriod": True,
            "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True,
            "BridgeNfIptables": True, "BridgeNfIp6tables": True, "Debug": cfg.log_level == "debug",
            "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": True, "NGoroutines": 0,
            "SystemTime": datetime.now().astimezone().isoformat(), "LoggingDriver": cfg.log_driver,
            "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NEventsListener": 0,
            "KernelVersion": uname.release, "OperatingSystem": _os_release(), "OSVersion": "",
            "OSType": "linux", "Architecture": platform.machine(), "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": _registry_config(cfg.insecure_registries, cfg.registry_mirrors),
            "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": socket.gethostname(), "Labels": [],
            "ExperimentalBuild": False, "ServerVersion": __version__, "Runtimes": runtimes,
            "DefaultRuntime": cfg.default_runtime, "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState":
                                                             "inactive", "ControlAvailable": False, "Error": "",
                                                             "RemoteManagers": None},
            "LiveRestoreEnabled": cfg.live_restore, "Isolation": "", "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"], "ProductLicense": "", "Warnings": None,
            "CDISpecDirs": [],
        })

    @r.get("/events")
    def events(req: Request) -> Stream:
        since = _parse_time(req.q("since"))
        until = _parse_time(req.q("until"))
        if since is not None and until is not None and until < since:
            raise InvalidParameter("`since` time is after `until` time")
        filters = req.filters()

        def gen() -> Iterator[bytes]:
            for ev in s.events.subscribe(since=since, until=until, filters=filters):
                if not ev:
                    yield b""  # heartbeat; the server skips empty chunks but a dead peer raises on flush
                    continue
                yield json.dumps(ev).encode() + b"\n"

        return Stream(gen(), "application/json")

    @r.get("/system/df")
    def system_df(req: Request) -> JSON:
        images = s.images.df_images()
        layers_size = sum(int(i.get("Size", 0) or 0) for i in images)
        containers = s.containers.df_containers()
        volumes = s.volumes.df_volumes()
        build_cache = s.builds.df()
        return JSON({"LayersSize": layers_size, "Images": images, "Containers": containers,
                     "Volumes": volumes, "BuildCache": build_cache})
