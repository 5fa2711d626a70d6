"""The container start/stop fast path: ready-made namespaces, background veth deletion, no iptables
without published ports."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from nethelp import Env, resolve_in

from dockyard.networks import bridge, netns
from dockyard.networks.nspool import SPARE_PREFIX


def _spares(env: Env) -> list[str]:
    return [f for f in os.listdir(os.path.join(env.tmp, "netns")) if f.startswith(SPARE_PREFIX)]


def _wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_spare_namespaces_move_into_place_and_go_on_stop(env: Env) -> None:
    assert _wait_for(lambda: len(_spares(env)) == env.svc.nspool.size)
    before = set(_spares(env))
    c = env.svc.prepare_container(env.cfg("a"))
    assert c.netns_path and netns.is_pinned(c.netns_path)
    taken = before - set(_spares(env))
    assert len(taken) == 1  # a spare was used, not a new namespace
    inside = {i["name"]: i["addrs"] for i in bridge.interfaces_inside(c.netns_path)}
    assert inside == {"lo": ["127.0.0.1"], "eth0": [c.settings["IPAddress"]]}
    assert _wait_for(lambda: len(_spares(env)) == env.svc.nspool.size)  # topped up again
    env.svc.nspool.stop()
    assert _spares(env) == []
    d = env.svc.prepare_container(env.cfg("b"))  # no spares left: made on the spot
    assert d.netns_path and netns.is_pinned(d.netns_path)
    assert [i["name"] for i in bridge.interfaces_inside(d.netns_path)] == ["lo", "eth0"]
    for x in (c, d):
        env.svc.release_container(x.settings["SandboxID"])
    assert not os.path.exists(c.netns_path) and not os.path.exists(d.netns_path)


def test_dns_listener_from_a_spare_answers(env: Env) -> None:
    env.svc.create("fast", ipam_cfg={"Config": [{"Subnet": env.subnet(3)}]})
    assert _wait_for(lambda: len(_spares(env)) == env.svc.nspool.size)
    a = env.svc.prepare_container(env.cfg("alpha", network_mode="fast"))
    b = env.svc.prepare_container(env.cfg("beta", network_mode="fast"))
    assert a.netns_path
    assert resolve_in(a.netns_path, "beta") == (0, [b.settings["Networks"]["fast"]["IPAddress"]])
    with open(a.resolv_conf_path) as f:
        assert "nameserver 127.0.0.11" in f.read()
    for x in (a, b):
        env.svc.release_container(x.settings["SandboxID"])
    env.svc.remove("fast")


def test_released_address_waits_for_its_veth(env: Env) -> None:
    a = env.svc.prepare_container(env.cfg("a"))
    ip_a = a.settings["IPAddress"]
    veth = env.svc.store.endpoints(container_id=a.settings["SandboxID"])[0].host_veth
    bridge_id = env.svc.store.endpoints(container_id=a.settings["SandboxID"])[0].network_id
    with env.svc.netlink._reap_cv:  # the reaper cannot start on it while this is held
        t0 = time.perf_counter()
        env.svc.release_container(a.settings["SandboxID"])
        assert time.perf_counter() - t0 < 1.0
        assert ip_a in env.svc.netlink.cooling(bridge_id)
        b = env.svc.prepare_container(env.cfg("b"))
        assert b.settings["IPAddress"] != ip_a  # the old veth may still be on the bridge
    env.svc.netlink.drain()
    assert not os.path.exists(f"/sys/class/net/{veth}")
    assert env.svc.netlink.cooling(bridge_id) == set()
    c = env.svc.prepare_container(env.cfg("c"))
    assert c.settings["IPAddress"] == ip_a  # free again once the link is gone
    for x in (b, c):
        env.svc.release_container(x.settings["SandboxID"])


def _count_iptables(env: Env) -> dict[str, int]:
    """Count the iptables processes the firewall starts (it still runs them)."""
    fw = env.svc.firewall
    counts = {"ipt": 0, "restore": 0, "scan": 0}

    def spy(name: str, key: str) -> None:
        orig = getattr(fw, name)

        def counted(*a: Any, **kw: Any) -> Any:
            counts[key] += 1
            return orig(*a, **kw)

        setattr(fw, name, counted)

    spy("_ipt", "ipt")
    spy("_restore_tables", "restore")
    spy("_delete_tagged", "scan")
    return counts


def test_no_iptables_without_ports_and_one_restore_with(env: Env) -> None:
    counts = _count_iptables(env)
    cfg = env.cfg("plain")
    env.svc.prepare_container(cfg)
    env.svc.release_container(cfg.container_id)
    env.svc.remove_container(cfg.container_id)  # docker rm after the exit: releases again
    assert counts == {"ipt": 0, "restore": 0, "scan": 0}
    cfg = env.cfg("ported", port_bindings={"80/tcp": [{"HostPort": ""}], "53/udp": [{"HostPort": ""}]})
    env.svc.prepare_container(cfg)
    assert counts == {"ipt": 0, "restore": 1, "scan": 0}  # both tables in one iptables-restore
    assert len([r for r in env.svc.firewall.rules() if f"c{cfg.container_id[:12]}" in r]) == 6
    counts["ipt"] = 0  # rules() lists with iptables -S
    env.svc.release_container(cfg.container_id)
    env.svc.remove_container(cfg.container_id)
    assert counts == {"ipt": 0, "restore": 2, "scan": 0}  # deleted by spec, no listing
    assert not [r for r in env.svc.firewall.rules() if f"c{cfg.container_id[:12]}" in r]


def test_missing_rules_fall_back_to_tag_scan(env: Env) -> None:
    cfg = env.cfg("ported", port_bindings={"80/tcp": [{"HostPort": ""}]})
    env.svc.prepare_container(cfg)
    tag = f"c{cfg.container_id[:12]}"
    one = next(r for r in env.svc.firewall.rules() if tag in r and r.startswith("nat:") and "DNAT" in r)
    env.svc.firewall._ipt("nat", "-D", *one.split(" ", 2)[2].split())  # someone removed a rule by hand
    env.svc.release_container(cfg.container_id)
    assert not [r for r in env.svc.firewall.rules() if tag in r]


def test_static_address_right_after_release(env: Env) -> None:
    """A restart of a container with --ip: its address must not be refused while the old veth goes."""
    subnet = env.subnet(5)
    env.svc.create("static", ipam_cfg={"Config": [{"Subnet": subnet}]})
    ip = subnet.rsplit(".", 1)[0] + ".50"
    cfg = env.cfg("s", network_mode="static", endpoints={"static": {"IPAMConfig": {"IPv4Address": ip}}})
    for _ in range(3):
        c = env.svc.prepare_container(cfg)
        assert c.settings["Networks"]["static"]["IPAddress"] == ip
        env.svc.release_container(cfg.container_id)
    env.svc.remove("static")


def test_small_pool_reuses_addresses_after_release(env: Env) -> None:
    """A /29 has 5 usable addresses: quick start/stop cycles must not exhaust it."""
    subnet = ipaddress.ip_network(env.subnet(6)[:-3] + "/29", strict=False)
    env.svc.create("tiny", ipam_cfg={"Config": [{"Subnet": str(subnet)}]})
    given = []
    for i in range(8):
        cfg = env.cfg(f"t{i}", network_mode="tiny")
        c = env.svc.prepare_container(cfg)
        given.append(ipaddress.ip_address(c.settings["Networks"]["tiny"]["IPAddress"]))
        env.svc.release_container(cfg.container_id)
    env.svc.remove("tiny")
    assert all(ip in subnet for ip in given), given
    assert len(set(given)) <= 5 < len(given)  # 8 containers from 5 addresses: released ones were given again


def test_restart_removes_spares_a_crash_left(env: Env) -> None:
    from dockyard.networks import nspool

    live = env.svc.prepare_container(env.cfg("live"))
    assert live.netns_path
    orphan = os.path.join(env.tmp, "netns", SPARE_PREFIX + "0rphan")
    nspool.make(orphan, True).close_sockets()  # as a daemon killed with spares in its pool leaves them
    holder = subprocess.Popen(["nsenter", f"--net={live.netns_path}", "sleep", "60"])
    try:
        time.sleep(0.2)
        env.svc.shutdown()  # a container still runs: namespaces stay
        assert netns.is_pinned(orphan)
        env.svc = env.new_service()
        env.svc.startup()
        assert not os.path.exists(orphan)
        assert netns.is_pinned(live.netns_path)
        assert [i["name"] for i in bridge.interfaces_inside(live.netns_path)] == ["lo", "eth0"]
    finally:
        holder.kill()
        holder.wait()
