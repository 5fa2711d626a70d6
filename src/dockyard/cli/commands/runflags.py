"""`run`/`create` flags and the exact create body (Config + HostConfig + NetworkingConfig) docker sends.

The body mirrors the docker CLI's, zero values included, so the daemon sees the same request
whichever client sent it (tests/unit/test_run_flags.py compares the two byte for byte).
"""

from __future__ import annotations

import ipaddress
import os

from dockyard.cli.app import CLIError
from dockyard.cli.fastargs import REMAINDER

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    import argparse
    from typing import Any

_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def ram_in_bytes(text: str) -> int:
    """docker's RAMInBytes: "512m" → 536870912 (binary units, optional trailing b/ib)."""
    s = text.strip().lower()
    if s == "-1":
        return -1
    for suffix in ("ib", "b"):
        if s.endswith(suffix) and len(s) > len(suffix) and not s[: -len(suffix)][-1:].isdigit():
            s = s[: -len(suffix)]
            break
    mult = 1
    if s and s[-1] in _UNITS:
        mult, s = _UNITS[s[-1]], s[:-1]
    try:
        value = float(s)
    except ValueError:
        raise CLIError(f"invalid size: '{text}'", 125) from None
    if value < 0:
        raise CLIError(f"invalid size: '{text}'", 125)
    return int(value * mult)


def parse_duration_ns(text: str) -> int:
    """Go's time.ParseDuration for the health flags: "30s", "1m30s", "500ms"."""
    units = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    s = text.strip()
    if s in ("0", ""):
        return 0
    total = 0.0
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if j == i or unit not in units:
            raise CLIError(f'invalid argument "{text}": time: invalid duration "{text}"', 125)
        total += float(s[i:j]) * units[unit]
        i = k
    return int(total)


def _nano_cpus(text: str) -> int:
    try:
        return int(round(float(text) * 1e9))
    except ValueError:
        raise CLIError(f'invalid argument "{text}" for "--cpus" flag: failed to parse {text} as a rational number',
                       125) from None


def _parse_port_range(text: str) -> tuple[int, int]:
    a, _, b = text.partition("-")
    try:
        lo = int(a)
        hi = int(b) if b else lo
    except ValueError:
        raise CLIError(f"invalid port range: {text}", 125) from None
    return lo, hi


def parse_publish(spec: str) -> list[tuple[str, str, str]]:
    """-p [ip:][hostPort:]containerPort[/proto] → [(container "80/tcp", host ip, host port)]."""
    spec, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if spec.startswith("["):  # [ipv6]:host:container
        end = spec.index("]")
        ip, rest = spec[1:end], spec[end + 2:]
        host, _, cport = rest.rpartition(":")
    else:
        parts = spec.split(":")
        if len(parts) == 1:
            ip, host, cport = "", "", parts[0]
        elif len(parts) == 2:
            ip, host, cport = "", parts[0], parts[1]
        elif len(parts) == 3:
            ip, host, cport = parts
        else:
            raise CLIError(f"invalid port format for --publish: {spec}", 125)
    if not cport:
        raise CLIError(f"no port specified: {spec}<empty>", 125)
    clo, chi = _parse_port_range(cport)
    if host:
        hlo, hhi = _parse_port_range(host)
    else:
        hlo = hhi = 0
    out: list[tuple[str, str, str]] = []
    n = chi - clo
    if host and (hhi - hlo) != n and hhi != hlo:
        raise CLIError(f"invalid ranges specified for container and host Ports: {cport} and {host}", 125)
    for i in range(n + 1):
        if not host:
            hp = ""
        elif hhi == hlo and n > 0:
            hp = f"{hlo}"
        else:
            hp = str(hlo + i)
        out.append((f"{clo + i}/{proto}", ip, hp))
    return out


def _key_values(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CLIError(f"open {path}: {e.strerror.lower() if e.strerror else e}", 125) from None
    return [ln for ln in (x.strip() for x in lines) if ln and not ln.startswith("#")]


def _env_entries(items: list[str]) -> list[str]:
    """KEY=VALUE as is; a bare KEY takes the client's environment value or is dropped, like docker."""
    out: list[str] = []
    for item in items:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out


def _parse_mount(spec: str) -> dict[str, Any]:
    m: dict[str, Any] = {"Type": "volume"}
    bind_opts: dict[str, Any] = {}
    vol_opts: dict[str, Any] = {}
    tmpfs_opts: dict[str, Any] = {}
    for field in spec.split(","):
        k, eq, v = field.partition("=")
        k = k.strip().lower()
        if k == "type":
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("target", "dst", "destination"):
            m["Target"] = v
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = (not eq) or v.lower() in ("1", "true")
        elif k == "bind-propagation":
            bind_opts["Propagation"] = v
        elif k == "volume-nocopy":
            vol_opts["NoCopy"] = (not eq) or v.lower() in ("1", "true")
        elif k == "volume-opt":
            ok, _, ov = v.partition("=")
            vol_opts.setdefault("DriverConfig", {"Options": {}})["Options"][ok] = ov
        elif k == "tmpfs-size":
            tmpfs_opts["SizeBytes"] = ram_in_bytes(v)
        elif k == "tmpfs-mode":
            tmpfs_opts["Mode"] = int(v, 8)
        else:
            raise CLIError(f"invalid argument \"{spec}\" for \"--mount\" flag: unexpected key '{k}' in '{field}'", 125)
    if "Target" not in m:
        raise CLIError(f"invalid argument \"{spec}\" for \"--mount\" flag: target is required", 125)
    if bind_opts:
        m["BindOptions"] = bind_opts
    if m["Type"] == "volume":
        vol_opts.setdefault("DriverConfig", {})  # docker always sends it for volume mounts
    if vol_opts:
        m["VolumeOptions"] = vol_opts
    if tmpfs_opts:
        m["TmpfsOptions"] = tmpfs_opts
    return m


def _ulimit(spec: str) -> dict[str, Any]:
    name, _, limits = spec.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        s = int(soft)
        h = int(hard) if hard else s
    except ValueError:
        raise CLIError(f'invalid argument "{spec}" for "--ulimit" flag: invalid ulimit argument: {spec}', 125) from None
    return {"Name": name, "Hard": h, "Soft": s}


def _restart_policy(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise CLIError(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                       "'on-failure', or 'unless-stopped'", 125)
    n = 0
    if count:
        if name != "on-failure":
            raise CLIError("invalid restart policy: maximum retry count can only be used with 'on-failure'", 125)
        n = int(count)
    return {"Name": name or "no", "MaximumRetryCount": n}


def configure_create_flags(p: argparse.ArgumentParser) -> None:
    """docker's run/create flags; -h is --hostname as in docker (help stays --help)."""
    a = p.add_argument
    L = "append"
    a("-a", "--attach", action=L, default=[])
    a("--add-host", action=L, default=[])
    a("--cap-add", action=L, default=[])
    a("--cap-drop", action=L, default=[])
    a("--cgroup-parent", default="")
    a("--cgroupns", default="")
    a("--cidfile", default="")
    a("--cpu-period", type=int, default=0)
    a("--cpu-quota", type=int, default=0)
    a("-c", "--cpu-shares", type=int, default=0)
    a("--cpus", default="")
    a("--cpuset-cpus", default="")
    a("--cpuset-mems", default="")
    a("--device", action=L, default=[])
    a("--dns", action=L, default=[])
    a("--dns-option", "--dns-opt", action=L, default=[])
    a("--dns-search", action=L, default=[])
    a("--domainname", default="")
    a("--entrypoint", default=None)
    a("-e", "--env", action=L, default=[])
    a("--env-file", action=L, default=[])
    a("--expose", action=L, default=[])
    a("--group-add", action=L, default=[])
    a("--health-cmd", default="")
    a("--health-interval", default="")
    a("--health-retries", type=int, default=0)
    a("--health-start-period", default="")
    a("--health-start-interval", default="")
    a("--health-timeout", default="")
    a("--health-on-failure", default="")
    a("-h", "--hostname", default="")
    a("--init", action="store_true", default=None)
    a("-i", "--interactive", action="store_true")
    a("--ip", default="")
    a("--ip6", default="")
    a("--ipc", default="")
    a("--isolation", default="")
    a("-l", "--label", action=L, default=[])
    a("--label-file", action=L, default=[])
    a("--link", action=L, default=[])
    a("--link-local-ip", action=L, default=[])
    a("--log-driver", default="")
    a("--log-opt", action=L, default=[])
    a("--mac-address", default="")
    a("-m", "--memory", default="")
    a("--memory-reservation", default="")
    a("--memory-swap", default="")
    a("--memory-swappiness", type=int, default=-1)
    a("--mount", action=L, default=[])
    a("--name", default="")
    a("--network", "--net", action=L, default=[])
    a("--network-alias", "--net-alias", action=L, default=[])
    a("--no-healthcheck", action="store_true")
    a("--oom-kill-disable", action="store_true")
    a("--oom-score-adj", type=int, default=0)
    a("--pid", default="")
    a("--pids-limit", type=int, default=0)
    a("--platform", default="")
    a("--privileged", action="store_true")
    a("-p", "--publish", action=L, default=[])
    a("-P", "--publish-all", action="store_true")
    a("--pull", default="missing", choices=["always", "missing", "never"])
    a("-q", "--quiet", action="store_true")
    a("--read-only", action="store_true")
    a("--restart", default="no")
    a("--rm", action="store_true")
    a("--runtime", default="")
    a("--security-opt", action=L, default=[])
    a("--shm-size", default="")
    a("--stop-signal", default="")
    a("--stop-timeout", type=int, default=None)
    a("--storage-opt", action=L, default=[])
    a("--sysctl", action=L, default=[])
    a("--tmpfs", action=L, default=[])
    a("-t", "--tty", action="store_true")
    a("--ulimit", action=L, default=[])
    a("-u", "--user", default="")
    a("--userns", default="")
    a("--uts", default="")
    a("-v", "--volume", action=L, default=[])
    a("--volume-driver", default="")
    a("--volumes-from", action=L, default=[])
    a("-w", "--workdir", default="")
    a("image", metavar="IMAGE")
    a("command", metavar="COMMAND", nargs=REMAINDER)


def _endpoint(aliases: list[str] | None, ip: str, ip6: str, mac: str, link_local: list[str] | None = None,
              links: list[str] | None = None) -> dict[str, Any]:
    """One EndpointsConfig entry; the first network takes --ip/--ip6/--link-local-ip/--mac-address, and --link
    too when it is a user-defined network (an endpoint alias there, as the docker CLI sends it)."""
    ipam: dict[str, Any] | None = None
    if ip or ip6 or link_local:
        ipam = {}
        if ip:
            ipam["IPv4Address"] = ip
        if ip6:
            ipam["IPv6Address"] = ip6
        if link_local:
            for addr in link_local:
                try:
                    ipaddress.ip_address(addr)
                except ValueError:
                    raise CLIError(f"invalid link-local IP address {addr}: ParseAddr({addr!r}): unable to parse "
                                   "IP", 125) from None
            ipam["LinkLocalIPs"] = list(link_local)
    return {"IPAMConfig": ipam, "Links": links or None, "Aliases": aliases or None, "DriverOpts": None,
            "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "MacAddress": mac, "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def build_create_body(ns: argparse.Namespace, detach: bool = False) -> dict[str, Any]:
    """The JSON body of POST /containers/create for the parsed flags."""
    attach = [s.lower() for s in ns.attach]
    for s in attach:
        if s not in ("stdin", "stdout", "stderr"):
            raise CLIError(f"invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, "
                           "STDOUT and STDERR", 125)
    if detach:
        if attach:
            raise CLIError("Conflicting options: -a and -d", 125)
        a_in = a_out = a_err = False
    elif attach:
        a_in, a_out, a_err = "stdin" in attach, "stdout" in attach, "stderr" in attach
    else:
        a_in, a_out, a_err = ns.interactive, True, True

    env: list[str] = []
    for path in ns.env_file:
        env += _env_entries(_read_lines(path))
    env += _env_entries(ns.env)
    labels: dict[str, str] = {}
    for path in ns.label_file:  # docker drops label-file lines without "=" (unlike -l)
        labels.update(_key_values([ln for ln in _read_lines(path) if "=" in ln], "label"))
    labels.update(_key_values(ns.label, "label"))

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in ns.publish:
        for cport, ip, hport in parse_publish(spec):
            exposed[cport] = {}
            bindings.setdefault(cport, []).append({"HostIp": ip, "HostPort": hport})
    for spec in ns.expose:
        port, _, proto = spec.partition("/")
        lo, hi = _parse_port_range(port)
        for n in range(lo, hi + 1):
            exposed[f"{n}/{proto or 'tcp'}"] = {}

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in ns.volume:
        parts = spec.split(":")
        if len(parts) == 1:
            volumes[spec] = {}
        else:
            binds.append(spec)

    config: dict[str, Any] = {
        "Hostname": ns.hostname, "Domainname": ns.domainname, "User": ns.user,
        "AttachStdin": a_in, "AttachStdout": a_out, "AttachStderr": a_err,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update({
        "Tty": ns.tty, "OpenStdin": ns.interactive, "StdinOnce": bool(ns.interactive and a_in and not detach),
        "Env": env or None, "Cmd": ns.command or None,
    })
    health = _healthcheck(ns)
    if health is not None:
        config["Healthcheck"] = health
    config["Image"] = ns.image
    config["Volumes"] = volumes
    config["WorkingDir"] = ns.workdir
    config["Entrypoint"] = [ns.entrypoint] if ns.entrypoint is not None else None
    if ns.entrypoint == "":
        config["Entrypoint"] = [""]
    config["OnBuild"] = None
    config["Labels"] = labels
    if ns.stop_signal:
        config["StopSignal"] = ns.stop_signal
    if ns.stop_timeout is not None:
        config["StopTimeout"] = ns.stop_timeout

    policy = _restart_policy(ns.restart)
    if ns.rm and policy["Name"] != "no":
        raise CLIError("conflicting options: cannot specify both --restart and --rm", 125)
    networks = ns.network or ["default"]
    net_mode = networks[0]
    log_config = {"Type": ns.log_driver, "Config": _key_values(ns.log_opt, "log-opt")}
    host: dict[str, Any] = {
        "Binds": binds or None, "ContainerIDFile": ns.cidfile, "LogConfig": log_config,
        "NetworkMode": net_mode, "PortBindings": bindings, "RestartPolicy": policy,
        "AutoRemove": ns.rm, "VolumeDriver": ns.volume_driver, "VolumesFrom": ns.volumes_from or None,
        "ConsoleSize": [0, 0], "CapAdd": _caps(ns.cap_add), "CapDrop": _caps(ns.cap_drop),
        "CgroupnsMode": ns.cgroupns, "Dns": ns.dns, "DnsOptions": ns.dns_option, "DnsSearch": ns.dns_search,
        "ExtraHosts": ns.add_host or None, "GroupAdd": ns.group_add or None, "IpcMode": ns.ipc, "Cgroup": "",
        "Links": ns.link or None, "OomScoreAdj": ns.oom_score_adj, "PidMode": ns.pid,
        "Privileged": ns.privileged, "PublishAllPorts": ns.publish_all, "ReadonlyRootfs": ns.read_only,
        "SecurityOpt": ns.security_opt or None,
    }
    if ns.storage_opt:
        host["StorageOpt"] = _key_values(ns.storage_opt, "storage-opt")
    if ns.tmpfs:
        host["Tmpfs"] = {t.partition(":")[0]: t.partition(":")[2] for t in ns.tmpfs}
    host.update({"UTSMode": ns.uts, "UsernsMode": ns.userns,
                 "ShmSize": ram_in_bytes(ns.shm_size) if ns.shm_size else 0})
    if ns.sysctl:
        host["Sysctls"] = _key_values(ns.sysctl, "sysctl")
    if ns.runtime:
        host["Runtime"] = ns.runtime
    host.update({
        "Isolation": ns.isolation, "CpuShares": ns.cpu_shares,
        "Memory": ram_in_bytes(ns.memory) if ns.memory else 0,
        "NanoCpus": _nano_cpus(ns.cpus) if ns.cpus else 0,
        "CgroupParent": ns.cgroup_parent, "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [], "CpuPeriod": ns.cpu_period, "CpuQuota": ns.cpu_quota,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": ns.cpuset_cpus,
        "CpusetMems": ns.cpuset_mems, "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
        "MemoryReservation": ram_in_bytes(ns.memory_reservation) if ns.memory_reservation else 0,
        "MemorySwap": ram_in_bytes(ns.memory_swap) if ns.memory_swap else 0,
        "MemorySwappiness": ns.memory_swappiness, "OomKillDisable": ns.oom_kill_disable,
        "PidsLimit": ns.pids_limit, "Ulimits": [_ulimit(u) for u in ns.ulimit],
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    })
    if ns.mount:
        host["Mounts"] = [_parse_mount(m) for m in ns.mount]
    host["MaskedPaths"] = None
    host["ReadonlyPaths"] = None
    if ns.init:
        host["Init"] = True
    if ns.health_on_failure:
        host["HealthOnFailure"] = ns.health_on_failure
    if ns.device:
        raise CLIError("--device is not supported by dockyard", 125)

    endpoints: dict[str, Any] = {}
    for i, net in enumerate(networks):
        if net in ("host", "none") or net.startswith("container:"):
            continue
        aliases = ns.network_alias if i == 0 else None
        user_defined = net not in ("default", "bridge")
        endpoints[net] = _endpoint(aliases, ns.ip if i == 0 else "", ns.ip6 if i == 0 else "",
                                   ns.mac_address if i == 0 else "", ns.link_local_ip if i == 0 else None,
                                   ns.link if i == 0 and user_defined else None)
    body = dict(config)
    body["HostConfig"] = host
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return body


def _caps(names: list[str]) -> list[str] | None:
    """docker normalises capability names: upper case with the CAP_ prefix, "ALL" as is."""
    out = []
    for n in names:
        n = n.strip().upper()
        out.append(n if n == "ALL" or n.startswith("CAP_") else "CAP_" + n)
    return out or None


def _healthcheck(ns: argparse.Namespace) -> dict[str, Any] | None:
    if ns.no_healthcheck:
        if ns.health_cmd or ns.health_interval or ns.health_timeout or ns.health_retries or ns.health_start_period:
            raise CLIError("--no-healthcheck conflicts with --health-* options", 125)
        return {"Test": ["NONE"]}
    if not (ns.health_cmd or ns.health_interval or ns.health_timeout or ns.health_retries
            or ns.health_start_period or ns.health_start_interval):
        return None
    hc: dict[str, Any] = {}
    if ns.health_cmd:
        hc["Test"] = ["CMD-SHELL", ns.health_cmd]
    for key, val in (("Interval", ns.health_interval), ("Timeout", ns.health_timeout),
                     ("StartPeriod", ns.health_start_period), ("StartInterval", ns.health_start_interval)):
        d = parse_duration_ns(val) if val else 0
        if d < 0:
            raise CLIError(f"--health-{key.lower()} cannot be negative", 125)
        if d:
            hc[key] = d
    if ns.health_retries:
        hc["Retries"] = ns.health_retries
    return hc
