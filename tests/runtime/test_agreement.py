"""The same bundle under dockyard's runtime and under runc must look the same from inside."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.runtime import caps, cgroups, seccomp
from dockyard.runtime.cgroups.v2 import shares_to_weight
from helpers.runtime import Runtime

PROBE = """
echo "id: $(id)"
echo "hostname: $(hostname)"
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
echo "umask: $(umask)"
echo "cwd: $(pwd)"
echo "nofile: $(ulimit -n)"
echo "kcore: $(wc -c < /proc/kcore 2>&1)"
if echo 1 > /proc/sys/kernel/ostype 2>/dev/null; then echo "proc/sys: writable"; else echo "proc/sys: ro"; fi
if touch /rootfile 2>/dev/null; then echo "root: writable"; rm -f /rootfile; else echo "root: ro"; fi
cg() { cat "/sys/fs/cgroup/$1" 2>/dev/null || cat "/sys/fs/cgroup/$2" 2>/dev/null || echo "absent"; }
echo "memlimit: $(cg memory/memory.limit_in_bytes memory.max)"
echo "pidsmax: $(cg pids/pids.max pids.max)"
echo "cpushares: $(cg cpu/cpu.shares cpu.weight)"
echo "forward: $(cat /proc/sys/net/ipv4/ip_forward)"
echo "oom_score_adj: $(cat /proc/self/oom_score_adj)"
echo "cgroup: $(grep -E ':(memory|pids):' /proc/self/cgroup | tr '\n' ' ')"
ls /data 2>&1
ls -l /dev | awk '{print $1, $5, $6, $NF}'
cat /proc/mounts
exit 3
"""


def _docker_like(config: dict[str, Any]) -> None:
    """Docker's defaults: its capability set, no NNP, default seccomp, limits, a non-root user."""
    names = list(caps.DEFAULT_DOCKER_CAPS)
    proc = config["process"]
    proc["capabilities"] = {k: names for k in ("bounding", "effective", "permitted")}
    proc["noNewPrivileges"] = False
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 1000]}
    proc["cwd"] = "/home/user"
    config["linux"]["seccomp"] = seccomp.default_profile(names)
    config["linux"]["resources"].update(
        {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 50}, "cpu": {"shares": 512}}
    )
    config["hostname"] = "docker-like"
    config["process"]["oomScoreAdj"] = 500
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    config["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
                                   "uid": 0, "gid": 10}]
    config["mounts"].append({"destination": "/data", "type": "bind", "source": "/etc/ssl",
                             "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]})


def _cgroupns(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"].append({"type": "cgroup"})
    config["linux"]["resources"]["memory"] = {"limit": 48 * 1024 * 1024}


def _root_ambient(config: dict[str, Any]) -> None:
    """Inheritable + ambient caps, writable root, umask and rlimits."""
    names = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
    config["process"]["capabilities"] = {k: names for k in ("bounding", "effective", "permitted", "inheritable",
                                                             "ambient")}
    config["process"]["user"] = {"uid": 0, "gid": 0, "umask": 0o077}
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 512}]
    config["root"]["readonly"] = False
    config["process"]["cwd"] = "/tmp"


def _user_ambient(config: dict[str, Any]) -> None:
    names = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    config["process"]["capabilities"] = {k: names for k in ("bounding", "effective", "permitted", "inheritable",
                                                             "ambient")}
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["process"]["noNewPrivileges"] = False


def _all_caps(config: dict[str, Any]) -> None:
    names = caps.host_bounding_set()
    config["process"]["capabilities"] = {k: names for k in ("bounding", "effective", "permitted")}
    config["linux"]["maskedPaths"] = []
    config["linux"]["readonlyPaths"] = []


CASES = {
    "runc-default": None,
    "docker-like": _docker_like,
    "root-ambient": _root_ambient,
    "user-ambient": _user_ambient,
    "all-caps-unmasked": _all_caps,
    "cgroupns": _cgroupns,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_view_as_runc(case: str, make_bundle: Any, dockyard_rt: Runtime, runc_rt: Runtime) -> None:
    bundle = make_bundle(["sh", "-c", PROBE], CASES[case], name=f"agree-{case}")
    ours = dockyard_rt.run(f"agree-{case}", bundle)
    theirs = runc_rt.run(f"agree-{case}", bundle)
    assert theirs.returncode == 3, theirs.stderr
    assert ours.returncode == theirs.returncode, ours.stderr
    assert ours.stdout.splitlines() == theirs.stdout.splitlines()
    if case == "docker-like":  # the limits are visible inside on either cgroup layout, not "absent" in both
        lines = theirs.stdout.splitlines()
        shares = str(shares_to_weight(512)) if cgroups.is_unified() else "512"
        assert {"memlimit: 67108864", "pidsmax: 50", f"cpushares: {shares}"} <= set(lines), theirs.stdout
