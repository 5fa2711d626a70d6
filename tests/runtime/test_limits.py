"""Limits are enforced, not just written: memory (OOM kill), pids, seccomp, capabilities."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.runtime import caps, lifecycle, seccomp
from helpers.runtime import Runtime


@pytest.mark.dockyard_only("reads dockyard runtime's own state (lifecycle.oom_kill_count) and its run --keep")
def test_memory_limit_oom_kills_and_is_reported(make_bundle: Any, dockyard_rt: Runtime) -> None:
    def limit(config: dict[str, Any]) -> None:
        config["linux"]["resources"]["memory"] = {"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}

    bundle = make_bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"], limit, name="oom")
    res = dockyard_rt.cmd("run", "--keep", "--bundle", bundle, "oom")
    assert res.returncode == 137, res.stderr
    assert lifecycle.oom_kill_count(dockyard_rt.root, "oom") >= 1
    assert lifecycle.state(dockyard_rt.root, "oom")["status"] == "stopped"
    assert dockyard_rt.cmd("delete", "oom").returncode == 0


def test_pids_limit_stops_fork(make_bundle: Any, dockyard_rt: Runtime) -> None:
    def limit(config: dict[str, Any]) -> None:
        config["linux"]["resources"]["pids"] = {"limit": 5}

    script = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo done"
    res = dockyard_rt.run("pids", make_bundle(["sh", "-c", script], limit, name="pids"))
    assert "can't fork" in res.stderr or "Resource temporarily unavailable" in res.stderr, res.stderr


def _admin_with_seccomp(with_filter: bool) -> Any:
    def mutate(config: dict[str, Any]) -> None:
        names = [*caps.DEFAULT_DOCKER_CAPS, "CAP_SYS_ADMIN"]
        config["process"]["capabilities"] = {k: names for k in ("bounding", "effective", "permitted")}
        config["root"]["readonly"] = False
        if with_filter:
            # the profile as Docker builds it without CAP_SYS_ADMIN: unshare/mount stay denied
            config["linux"]["seccomp"] = seccomp.default_profile(list(caps.DEFAULT_DOCKER_CAPS))

    return mutate


def test_default_seccomp_profile_denies_unshare_and_mount(make_bundle: Any, dockyard_rt: Runtime) -> None:
    script = "unshare -m true; echo unshare=$?; mount -t tmpfs none /tmp; echo mount=$?"
    free = dockyard_rt.run("sc-free", make_bundle(["sh", "-c", script], _admin_with_seccomp(False), name="sc-free"))
    assert "unshare=0" in free.stdout and "mount=0" in free.stdout, free.stdout + free.stderr
    res = dockyard_rt.run("sc-deny", make_bundle(["sh", "-c", script], _admin_with_seccomp(True), name="sc-deny"))
    assert "unshare=1" in res.stdout and "mount=1" in res.stdout, res.stdout
    assert "Operation not permitted" in res.stderr


def test_without_cap_net_raw_no_raw_socket(make_bundle: Any, dockyard_rt: Runtime) -> None:
    def with_raw(config: dict[str, Any]) -> None:
        names = ["CAP_NET_RAW"]
        config["process"]["capabilities"] = {k: names for k in ("bounding", "effective", "permitted")}

    script = "ping -c 1 -W 1 127.0.0.1; echo rc=$?"
    allowed = dockyard_rt.run("raw-yes", make_bundle(["sh", "-c", script], with_raw, name="raw-yes"))
    denied = dockyard_rt.run("raw-no", make_bundle(["sh", "-c", script], name="raw-no"))
    assert "permission denied" not in allowed.stderr.lower(), allowed.stderr
    assert "permission denied" in denied.stderr.lower() or "not permitted" in denied.stderr.lower(), denied.stderr
    assert "rc=0" not in denied.stdout
