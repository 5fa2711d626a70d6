"""Docker Config + HostConfig + image config → an OCI runtime config.json, as dockerd generates it.

Defaults (capabilities, mounts, masked/readonly paths, device rules) follow moby's oci/defaults.go so that a
container sees the same environment under dockyard as under docker.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from dockyard.containers.mounts import MountPlan
from dockyard.containers.users import resolve_user
from dockyard.errors import InvalidParameter

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TINI = "/usr/bin/tini-static"
INIT_PATH = "/sbin/docker-init"

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                "CAP_KILL", "CAP_AUDIT_WRITE"]
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# the device cgroup: deny all, then docker's default allow list
DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
]

_RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack", "as"}


@dataclass
class NetFiles:
    """What the network service prepared: the netns to join and the generated /etc files."""

    netns_path: str | None = None
    join_host: bool = False
    hosts_path: str | None = None
    resolv_conf_path: str | None = None
    hostname_path: str | None = None


@dataclass
class SpecInput:
    container_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    image_config: dict[str, Any]
    rootfs: str
    cgroup_parent: str
    net: NetFiles = field(default_factory=NetFiles)
    mounts: MountPlan = field(default_factory=MountPlan)


# -- helpers shared with exec ---------------------------------------------------
def merge_env(*lists: list[str]) -> list[str]:
    """Later lists override earlier ones, keeping first-seen order, as docker's ReplaceOrAppendEnvValues does:
    an entry without '=' (``Foo``) unsets a variable an earlier list set, and is otherwise kept as given."""
    out: dict[str, str] = {}
    for env in lists:
        for item in env or []:
            key, eq, _ = item.partition("=")
            if not eq and key in out and "=" in out[key]:
                del out[key]
                continue
            out[key] = item
    return list(out.values())


def command_line(config: dict[str, Any]) -> list[str]:
    """Entrypoint + Cmd, both already defaulted from the image at create."""
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def capabilities(host_config: dict[str, Any], host_bounding: list[str]) -> list[str]:
    """Docker's default set ± CapAdd/CapDrop ("ALL" allowed in both); --privileged: the host's bounding set.

    Capabilities the host cannot grant are left out rather than failing the start.
    """
    if host_config.get("Privileged"):
        return list(host_bounding)

    def norm(name: str) -> str:
        n = name.upper()
        return n if n.startswith("CAP_") or n == "ALL" else "CAP_" + n

    adds = [norm(c) for c in host_config.get("CapAdd") or []]
    drops = [norm(c) for c in host_config.get("CapDrop") or []]
    if "ALL" in adds:
        caps = [c for c in host_bounding if c not in drops]
    elif "ALL" in drops:
        caps = list(dict.fromkeys(adds))
    else:
        caps = [c for c in dict.fromkeys(DEFAULT_CAPS + adds) if c not in drops]
    return [c for c in caps if c in host_bounding]


def security_options(host_config: dict[str, Any]) -> tuple[bool, dict[str, Any] | None, bool]:
    """(no_new_privileges, custom seccomp profile or None, seccomp unconfined) from SecurityOpt."""
    nnp, profile, unconfined = False, None, False
    for opt in host_config.get("SecurityOpt") or []:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "no-new-privileges":
            nnp = value in ("", "true", "1")
        elif key == "seccomp":
            if value == "unconfined":
                unconfined = True
            else:
                try:
                    profile = json.loads(value)
                except ValueError:
                    raise InvalidParameter(f"Decoding seccomp profile failed: {value[:40]!r}") from None
        elif key in ("apparmor", "label", "systempaths", "mask", "unmask"):
            continue
        else:
            raise InvalidParameter(f"invalid --security-opt 1: {opt!r}")
    return nnp, profile, unconfined


def _seccomp(host_config: dict[str, Any], caps: list[str]) -> dict[str, Any] | None:
    from dockyard.runtime import seccomp

    _, profile, unconfined = security_options(host_config)
    if host_config.get("Privileged") or unconfined:
        return None
    if profile is not None:
        if "syscalls" in profile and "defaultAction" in profile and "architectures" not in profile:
            return dict(profile)  # already OCI-shaped
        return seccomp.docker_profile_to_oci(profile, caps)
    return seccomp.default_profile(caps)


def rlimits(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for u in host_config.get("Ulimits") or []:
        name = str(u.get("Name", "")).lower()
        if name not in _RLIMITS:
            raise InvalidParameter(f"invalid ulimit type: {name}")
        out.append({"type": "RLIMIT_" + name.upper(), "soft": int(u.get("Soft", 0)), "hard": int(u.get("Hard", 0))})
    return out


def resources(host_config: dict[str, Any]) -> dict[str, Any]:
    """The OCI linux.resources block (also what `update` sends to a running container's cgroup)."""
    hc = host_config
    res: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    limit = int(hc.get("Memory") or 0)
    if limit:
        mem["limit"] = limit
        swap = int(hc.get("MemorySwap") or 0)
        if swap == 0:
            mem["swap"] = limit * 2
        elif swap > 0:
            mem["swap"] = swap
        else:
            mem["swap"] = -1
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if hc.get("MemorySwappiness") is not None and int(hc["MemorySwappiness"]) >= 0:
        mem["swappiness"] = int(hc["MemorySwappiness"])
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    else:
        if hc.get("CpuPeriod"):
            cpu["period"] = int(hc["CpuPeriod"])
        if hc.get("CpuQuota"):
            cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        res["cpu"] = cpu
    if hc.get("PidsLimit") and int(hc["PidsLimit"]) > 0:
        res["pids"] = {"limit": int(hc["PidsLimit"])}
    if hc.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(hc["BlkioWeight"])}
    return res


def validate_resources(hc: dict[str, Any]) -> None:
    """docker's create-time checks (same wording)."""
    mem = int(hc.get("Memory") or 0)
    if mem and mem < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = int(hc.get("MemorySwap") or 0)
    if swap > 0 and mem and swap < mem:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap > 0 and not mem:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    if hc.get("NanoCpus") and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    ncpu = os.cpu_count() or 1
    nano = int(hc.get("NanoCpus") or 0)
    if nano < 0 or nano > ncpu * 1_000_000_000:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs "
                               "available")
    if hc.get("CpuPeriod") and not 1000 <= int(hc["CpuPeriod"]) <= 1000000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                               "(i.e. 1000000)")
    if hc.get("CpuQuota") and 0 < int(hc["CpuQuota"]) < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    weight = int(hc.get("BlkioWeight") or 0)
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if hc.get("OomScoreAdj") is not None and not -1000 <= int(hc["OomScoreAdj"]) <= 1000:
        raise InvalidParameter(f"Invalid value {hc['OomScoreAdj']}, range for oom score adj is [-1000, 1000]")
    rlimits(hc)


CAP_SYS_RESOURCE = 24


def oom_score_adj_refusal(hc: dict[str, Any]) -> str | None:
    """Why the host would refuse the container's oom_score_adj (None if it can be set).

    Lowering oom_score_adj below the daemon's own needs CAP_SYS_RESOURCE; hosts that drop it from the
    bounding set (some VMs, nested containers) refuse even root, which runc reports only as a broken pipe.
    """
    want = hc.get("OomScoreAdj")
    if not want:
        return None
    try:
        with open("/proc/self/oom_score_adj") as f:
            own = int(f.read().strip() or 0)
        with open("/proc/self/status") as f:
            cap_eff = next((int(ln.split()[1], 16) for ln in f if ln.startswith("CapEff:")), 0)
    except (OSError, ValueError):
        return None
    if int(want) >= own or cap_eff & (1 << CAP_SYS_RESOURCE):
        return None
    return (f"OCI runtime create failed: write /proc/self/oom_score_adj: permission denied: setting oom_score_adj "
            f"to {int(want)} (below the daemon's {own}) needs CAP_SYS_RESOURCE, which this host does not grant")


_SKIP_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every device node of the host, for --privileged (runc's GetDevices walk, same skips)."""
    import stat as stat_mod

    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == root and d in _SKIP_DEV_DIRS)]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in ("/dev/console", "/dev/ptmx"):  # the container has its own (devpts)
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat_mod.S_ISCHR(st.st_mode):
                typ = "c"
            elif stat_mod.S_ISBLK(st.st_mode):
                typ = "b"
            else:
                continue
            out.append({"path": path, "type": typ, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stat_mod.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def _default_mounts(host_config: dict[str, Any]) -> list[dict[str, Any]]:
    shm = int(host_config.get("ShmSize") or 64 * 1024 * 1024)
    privileged = bool(host_config.get("Privileged"))
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
    ]


def _namespaces(inp: SpecInput) -> list[dict[str, Any]]:
    hc = inp.host_config
    ns: list[dict[str, Any]] = [{"type": "mount"}]
    if hc.get("PidMode") != "host":
        ns.append({"type": "pid"})
    if hc.get("IpcMode") != "host":
        ns.append({"type": "ipc"})
    if hc.get("UTSMode") != "host":
        ns.append({"type": "uts"})
    if not inp.net.join_host:
        entry: dict[str, Any] = {"type": "network"}
        if inp.net.netns_path:
            entry["path"] = inp.net.netns_path
        ns.append(entry)
    if hc.get("CgroupnsMode") == "private":
        ns.append({"type": "cgroup"})
    return ns


def process_spec(host_config: dict[str, Any], rootfs: str, args: list[str], env: list[str], user: str,
                 cwd: str, tty: bool, privileged: bool = False, hostname: str = "") -> dict[str, Any]:
    """The OCI process for the init or for an exec (same caps/seccomp/user rules); ``env`` is the final list."""
    from dockyard.runtime import caps as caps_mod

    uid, gid, groups = resolve_user(rootfs, user, list(host_config.get("GroupAdd") or []))
    host_bounding = caps_mod.host_bounding_set()
    cap_list = list(host_bounding) if privileged else capabilities(host_config, host_bounding)
    nnp, _, _ = security_options(host_config)
    base = [f"HOSTNAME={hostname}"] if hostname else []
    if not any(e.startswith("PATH=") for e in env):
        base.append(f"PATH={DEFAULT_PATH}")
    full_env = merge_env(base, env, ["TERM=xterm"] if tty and not any(e.startswith("TERM=") for e in env) else [])
    full_env = [e for e in full_env if "=" in e]  # a bare `Foo` is kept in Config.Env, but names no value
    user_spec: dict[str, Any] = {"uid": uid, "gid": gid}
    if groups:
        user_spec["additionalGids"] = groups
    proc: dict[str, Any] = {
        "terminal": tty,
        "user": user_spec,
        "args": args,
        "env": full_env,
        "cwd": cwd or "/",
        "capabilities": {"bounding": cap_list, "effective": cap_list, "permitted": cap_list},
        "noNewPrivileges": nnp,
    }
    limits = rlimits(host_config)
    if limits:
        proc["rlimits"] = limits
    if host_config.get("OomScoreAdj"):
        proc["oomScoreAdj"] = int(host_config["OomScoreAdj"])
    return proc


def generate(inp: SpecInput) -> dict[str, Any]:
    """The whole config.json for a container start."""
    cfg, hc = inp.config, inp.host_config
    privileged = bool(hc.get("Privileged"))
    args = command_line(cfg)
    if not args:
        raise InvalidParameter("no command specified")
    if hc.get("Init"):
        args = [INIT_PATH, "--", *args]
    proc = process_spec(hc, inp.rootfs, args, list(cfg.get("Env") or []), cfg.get("User") or "",
                        cfg.get("WorkingDir") or "/", bool(cfg.get("Tty")), privileged,
                        cfg.get("Hostname") or inp.container_id[:12])
    caps = proc["capabilities"]["bounding"]
    mounts = _default_mounts(hc) + inp.mounts.oci_mounts
    for dest, path in (("/etc/resolv.conf", inp.net.resolv_conf_path), ("/etc/hostname", inp.net.hostname_path),
                       ("/etc/hosts", inp.net.hosts_path)):
        if path and not inp.mounts.covers(dest):
            mounts.append({"destination": dest, "type": "bind", "source": path, "options": ["rbind", "rprivate"]})
    if hc.get("Init"):
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": TINI, "options": ["rbind", "ro"]})
    linux: dict[str, Any] = {
        "namespaces": _namespaces(inp),
        "cgroupsPath": f"/{inp.cgroup_parent.strip('/')}/{inp.container_id}",
        "resources": {**resources(hc), "devices": [{"allow": True, "access": "rwm"}] if privileged
                      else list(DEVICE_RULES)},
        "maskedPaths": [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(READONLY_PATHS),
    }
    if privileged:
        linux["devices"] = host_devices()
    if hc.get("Sysctls"):
        linux["sysctl"] = {str(k): str(v) for k, v in hc["Sysctls"].items()}
    seccomp = _seccomp(hc, caps)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": proc,
        "root": {"path": inp.rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": cfg.get("Hostname") or inp.container_id[:12],
        "mounts": mounts,
        "linux": linux,
    }
    if cfg.get("Domainname"):
        spec["domainname"] = cfg["Domainname"]
    return spec
