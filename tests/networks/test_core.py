"""The network service against the real kernel: namespaces, veths, bridges, iptables, DNS.

No container runtime involved: each "container" is a namespace the service makes, and the
test opens sockets inside it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any

import pytest
from nethelp import (
    Env,
    FakeUpstream,
    free_port,
    in_ns,
    loopback_dns_socket,
    resolve_in,
    serve_echo,
    tcp_fetch,
    tcp_listen,
)

from dockyard.errors import Forbidden, SystemError_
from dockyard.networks import bridge


def test_default_bridge_two_containers_talk(env: Env) -> None:
    a = env.svc.prepare_container(env.cfg("a"))
    b = env.svc.prepare_container(env.cfg("b"))
    assert a.netns_path and b.netns_path
    ip_b = b.settings["IPAddress"]
    assert b.settings["Networks"]["bridge"]["IPAddress"] == ip_b
    assert ip_b.startswith(f"10.{env.second}.{env.third}.")
    assert a.settings["Gateway"] == f"10.{env.second}.{env.third}.1"
    lst = tcp_listen(b.netns_path, 7000)
    serve_echo(lst)
    try:
        assert tcp_fetch(ip_b, 7000, ns=a.netns_path).decode() == a.settings["IPAddress"]
        # and from the host, straight to the container address
        assert tcp_fetch(ip_b, 7000).decode() == a.settings["Gateway"]
    finally:
        lst.close()
    names = [i["name"] for i in bridge.interfaces_inside(a.netns_path)]
    assert names == ["lo", "eth0"]


def test_published_port_on_localhost_and_from_other_container(env: Env) -> None:
    port = free_port()
    web = env.svc.prepare_container(env.cfg("web", port_bindings={"80/tcp": [{"HostIp": "", "HostPort": str(port)}]},
                                            exposed_ports={"80/tcp": {}, "443/tcp": {}}))
    assert web.netns_path
    assert web.settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}], "443/tcp": None}
    lst = tcp_listen(web.netns_path, 80)
    serve_echo(lst, b"hello")
    client = env.svc.prepare_container(env.cfg("client"))
    try:
        assert tcp_fetch("127.0.0.1", port) == b"hello"
        assert client.netns_path
        assert tcp_fetch(client.settings["Gateway"], port, ns=client.netns_path) == b"hello"
        # the port is held: a host program cannot take it
        s = socket.socket()
        with pytest.raises(OSError):
            s.bind(("0.0.0.0", port))
        s.close()
    finally:
        lst.close()
    env.svc.release_container(web.settings["SandboxID"])
    assert not [r for r in env.svc.firewall.rules() if "--to-destination" in r]
    s = socket.socket()
    s.bind(("0.0.0.0", port))  # released with the container
    s.close()


def test_port_conflicts_leave_nothing(env: Env) -> None:
    port = free_port()
    binding = {"80/tcp": [{"HostPort": str(port)}]}
    first = env.svc.prepare_container(env.cfg("first", port_bindings=binding))
    cfg2 = env.cfg("second", port_bindings=binding)
    with pytest.raises(SystemError_, match=rf"Bind for 0.0.0.0:{port} failed: port is already allocated"):
        env.svc.prepare_container(cfg2)
    assert not os.path.exists(os.path.join(env.tmp, "netns", cfg2.container_id))
    assert env.svc.store.container(cfg2.container_id) is None
    assert len(env.svc.store.endpoints()) == 1
    env.svc.release_container(first.settings["SandboxID"])
    # a host socket holding the port is a conflict too
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        with pytest.raises(SystemError_, match="port is already allocated"):
            env.svc.prepare_container(env.cfg("third", port_bindings=binding))
    finally:
        holder.close()
    links = [n for n in env.svc.netlink.link_names() if n.startswith(env.prefix)]
    assert links == []


def test_random_ports_publish_all_and_udp(env: Env) -> None:
    c = env.svc.prepare_container(env.cfg(
        "p", publish_all=True, exposed_ports={"53/udp": {}, "8080/tcp": {}},
        port_bindings={"9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}))
    ports = c.settings["Ports"]
    lo, hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    for key in ("53/udp", "8080/tcp", "9000/tcp"):
        assert lo <= int(ports[key][0]["HostPort"]) <= hi
    assert ports["9000/tcp"][0]["HostIp"] == "127.0.0.1"
    assert c.netns_path
    udp_port = int(ports["53/udp"][0]["HostPort"])

    def udp_server() -> socket.socket:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 53))
        return u
    srv = in_ns(c.netns_path, udp_server)
    try:
        cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cli.settimeout(3)
        cli.sendto(b"ping", ("127.0.0.1", udp_port))
        srv.settimeout(3)
        data, peer = srv.recvfrom(100)
        assert data == b"ping"
        srv.sendto(b"pong", peer)
        assert cli.recv(100) == b"pong"
        cli.close()
    finally:
        srv.close()


def test_user_network_dns_names_aliases_and_forwarding(env: Env) -> None:
    env.svc.create("appnet", ipam_cfg={"Config": [{"Subnet": env.subnet(1)}]})
    a = env.svc.prepare_container(env.cfg("alpha", network_mode="appnet",
                                          endpoints={"appnet": {"Aliases": ["db", "shared"]}}))
    b = env.svc.prepare_container(env.cfg("beta", network_mode="appnet",
                                          endpoints={"appnet": {"Aliases": ["shared"]}}))
    assert a.netns_path and b.netns_path
    ip_a = a.settings["Networks"]["appnet"]["IPAddress"]
    ip_b = b.settings["Networks"]["appnet"]["IPAddress"]
    assert resolve_in(b.netns_path, "alpha") == (0, [ip_a])
    assert resolve_in(b.netns_path, "db") == (0, [ip_a])
    assert resolve_in(b.netns_path, "alpha", tcp=True) == (0, [ip_a])
    rcode, shared = resolve_in(a.netns_path, "shared")
    assert rcode == 0 and sorted(shared) == sorted([ip_a, ip_b])
    assert resolve_in(a.netns_path, a.settings["SandboxID"][:12]) == (0, [ip_a])
    assert resolve_in(a.netns_path, "example.org") == (0, [FakeUpstream.ANSWER])
    assert "example.org" in env.upstream.queries
    resolv = open(a.resolv_conf_path).read()
    assert resolv.startswith("nameserver 127.0.0.11\n") and "ndots:0" in resolv
    # the default bridge has no embedded DNS
    plain = env.svc.prepare_container(env.cfg("plain"))
    assert "127.0.0.11" not in open(plain.resolv_conf_path).read()
    assert plain.settings["Networks"]["bridge"]["DNSNames"] is None


def test_dns_loopback_upstream_from_container_dns_option(env: Env) -> None:
    """--dns 127.x on a user network is asked from the host side (moby#38243)."""
    env.svc.create("n", ipam_cfg={"Config": [{"Subnet": env.subnet(2)}]})
    fake, fake_ip = loopback_dns_socket()
    try:
        from dockyard.networks.dns import build_answer
        c = env.svc.prepare_container(env.cfg("c", network_mode="n", dns=[fake_ip]))
        assert c.netns_path
        import threading

        def answer() -> None:
            msg, peer = fake.recvfrom(512)
            fake.sendto(build_answer(msg, ["203.0.113.9"]), peer)
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        assert resolve_in(c.netns_path, "outside.test") == (0, ["203.0.113.9"])
        t.join(2)
    finally:
        fake.close()


def test_isolation_between_networks_and_internal(env: Env) -> None:
    env.svc.create("n1", ipam_cfg={"Config": [{"Subnet": env.subnet(3)}]})
    env.svc.create("n2", ipam_cfg={"Config": [{"Subnet": env.subnet(4)}]})
    env.svc.create("inner", internal=True, ipam_cfg={"Config": [{"Subnet": env.subnet(5)}]})
    port = free_port()
    a = env.svc.prepare_container(env.cfg("a", network_mode="n1"))
    b = env.svc.prepare_container(env.cfg("b", network_mode="n2",
                                          port_bindings={"7001/tcp": [{"HostPort": str(port)}]}))
    i = env.svc.prepare_container(env.cfg("i", network_mode="inner"))
    assert a.netns_path and b.netns_path and i.netns_path
    ip_b = b.settings["Networks"]["n2"]["IPAddress"]
    lst = tcp_listen(b.netns_path, 7001)
    serve_echo(lst)
    try:
        with pytest.raises(OSError):
            tcp_fetch(ip_b, 7001, timeout=1, ns=a.netns_path)
        with pytest.raises(OSError):
            tcp_fetch(ip_b, 7001, timeout=1, ns=i.netns_path)
        # the published port is reachable from the other network, as through the host
        gw_a = a.settings["Networks"]["n1"]["Gateway"]
        seen_from = tcp_fetch(gw_a, port, ns=a.netns_path).decode()
        assert seen_from == b.settings["Networks"]["n2"]["Gateway"]  # masqueraded, as traffic via the host
    finally:
        lst.close()
    routes = subprocess.run(["nsenter", f"--net={i.netns_path}", "ip", "route"], capture_output=True, text=True)
    assert "default" not in routes.stdout
    routes = subprocess.run(["nsenter", f"--net={a.netns_path}", "ip", "route"], capture_output=True, text=True)
    assert "default via" in routes.stdout


def test_connect_disconnect_running_and_rm_in_use(env: Env) -> None:
    env.svc.create("side", ipam_cfg={"Config": [{"Subnet": env.subnet(6)}]})
    a = env.svc.prepare_container(env.cfg("a"))
    b = env.svc.prepare_container(env.cfg("b", network_mode="side"))
    cid = a.settings["SandboxID"]
    assert a.netns_path and b.netns_path
    told: list[tuple[str, list[str]]] = []
    env.containers.listener = lambda c, s: told.append((c, sorted(s["Networks"])))
    env.svc.connect("side", cid, {"Aliases": ["extra"], "IPAMConfig": {"IPv4Address": env.subnet(6)[:-4] + "50"}})
    names = [x["name"] for x in bridge.interfaces_inside(a.netns_path)]
    assert names == ["lo", "eth0", "eth1"]
    assert resolve_in(b.netns_path, "extra") == (0, [env.subnet(6)[:-4] + "50"])
    assert "127.0.0.11" in open(a.resolv_conf_path).read()
    insp = env.svc.inspect("side")
    assert cid in insp["Containers"] and insp["Containers"][cid]["IPv4Address"].endswith("/24")
    with pytest.raises(Forbidden, match="has active endpoints"):
        env.svc.remove("side")
    with pytest.raises(Forbidden, match="pre-defined"):
        env.svc.remove("bridge")
    env.svc.disconnect("side", cid)
    assert [x["name"] for x in bridge.interfaces_inside(a.netns_path)] == ["lo", "eth0"]
    assert told == [(cid, ["bridge", "side"]), (cid, ["bridge"])]
    with pytest.raises(Forbidden, match="is not connected"):
        env.svc.disconnect("side", cid)
    env.svc.release_container(b.settings["SandboxID"])
    env.svc.remove("side")
    assert not [n for n in env.svc.netlink.link_names() if n.startswith(env.prefix + "b")]


def test_files_and_host_none_container_modes(env: Env) -> None:
    c = env.svc.prepare_container(env.cfg("f", hostname="web", domainname="example.test", dns=["192.0.2.53"],
                                          dns_search=["corp.test"], dns_options=["ndots:3"],
                                          extra_hosts=["gw:host-gateway", "db=192.0.2.10"]))
    hosts = open(c.hosts_path).read()
    assert f"{c.settings['IPAddress']}\tweb.example.test web\n" in hosts
    assert f"{c.settings['Gateway']}\tgw\n" in hosts and "192.0.2.10\tdb\n" in hosts
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    assert open(c.resolv_conf_path).read() == "nameserver 192.0.2.53\nsearch corp.test\noptions ndots:3\n"
    assert open(c.hostname_path).read() == "web\n"
    h = env.svc.prepare_container(env.cfg("h", network_mode="host"))
    assert h.netns_path is None and "host" in h.settings["Networks"]
    n = env.svc.prepare_container(env.cfg("n", network_mode="none"))
    assert n.netns_path and [x["name"] for x in bridge.interfaces_inside(n.netns_path)] == ["lo"]
    assert n.settings["Networks"].keys() == {"none"}
    cid = c.settings["SandboxID"]
    scfg = env.cfg("s", network_mode=f"container:{cid}", container_netns_lookup=lambda ref: c.netns_path or "")
    shared = env.svc.prepare_container(scfg)
    assert shared.netns_path == c.netns_path and shared.hosts_path == c.hosts_path
    env.svc.release_container(scfg.container_id)
    assert os.path.exists(c.netns_path or "")
    for x in (h, n, c):
        env.svc.release_container(os.path.basename(os.path.dirname(x.hostname_path)))
    env.svc.release_container(cid)  # idempotent
    assert env.svc.store.containers() == []


def test_update_ports_add_and_remove(env: Env) -> None:
    c = env.svc.prepare_container(env.cfg("u"))
    assert c.netns_path
    cid = c.settings["SandboxID"]
    port = free_port()
    lst = tcp_listen(c.netns_path, 80)
    serve_echo(lst, b"late")
    try:
        with pytest.raises(OSError):
            tcp_fetch("127.0.0.1", port, timeout=1)
        settings = env.svc.update_ports(cid, [f"127.0.0.1:{port}:80"], [])
        assert settings["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert tcp_fetch("127.0.0.1", port) == b"late"
        settings = env.svc.update_ports(cid, [], ["80/tcp"])
        assert settings["Ports"] == {}
        settings = env.svc.update_ports(cid, {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}, [])
        assert tcp_fetch("127.0.0.1", port) == b"late"
        settings = env.svc.update_ports(cid, [], [f"{port}:80/tcp"])
        assert settings["Ports"] == {}
        with pytest.raises(OSError):
            tcp_fetch("127.0.0.1", port, timeout=1)
    finally:
        lst.close()


def test_restart_keeps_live_and_removes_stale(env: Env) -> None:
    live = env.svc.prepare_container(env.cfg("live", port_bindings={"80/tcp": [{"HostPort": ""}]}))
    dead = env.svc.prepare_container(env.cfg("dead"))
    assert live.netns_path and dead.netns_path
    holder = subprocess.Popen(["nsenter", f"--net={live.netns_path}", "sleep", "60"])
    try:
        time.sleep(0.2)
        env.svc.shutdown()  # daemon stops; containers keep running
        env.svc = env.new_service()
        env.svc.startup()
        live_id = live.settings["SandboxID"]
        dead_id = dead.settings["SandboxID"]
        assert env.svc.store.container(live_id) is not None
        assert env.svc.store.container(dead_id) is None
        assert not os.path.exists(dead.netns_path)
        assert [i["name"] for i in bridge.interfaces_inside(live.netns_path)] == ["lo", "eth0"]
        hp = int(live.settings["Ports"]["80/tcp"][0]["HostPort"])
        assert any(f"--dport {hp}" in r for r in env.svc.firewall.rules())
    finally:
        holder.kill()
        holder.wait()


def test_concurrent_prepare_and_release(env: Env) -> None:
    """The daemon serves API calls on threads: allocation and netlink must not trip over each other."""
    import threading

    env.svc.create("busy", ipam_cfg={"Config": [{"Subnet": env.subnet(7)}]})
    results: list[str] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            cfg = env.cfg(f"c{i}", network_mode="busy" if i % 2 else "default",
                          port_bindings={"80/tcp": [{"HostPort": ""}]})
            net = env.svc.prepare_container(cfg)
            results.append(next(iter(net.settings["Networks"].values()))["IPAddress"])
            env.svc.release_container(cfg.container_id)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 8
    assert env.svc.store.endpoints() == [] and env.svc.store.containers() == []


def test_configured_networks_edited_before_start_and_after_stop(env: Env) -> None:
    """Create records the networks; connect/disconnect of a container that does not run edit the record, tell
    the listener, and the next start attaches exactly what it lists (docker's NetworkSettings.Networks)."""
    env.svc.create("cfg", ipam_cfg={"Config": [{"Subnet": env.subnet(7)}]})
    cfg = env.cfg("c", network_mode="cfg", endpoints={"cfg": {"Aliases": ["one"]}})
    cid = cfg.container_id
    env.containers.known["c"] = env.containers.known[cid] = (cid, "c")
    told: list[dict[str, Any]] = []
    env.containers.listener = lambda c, s: told.append(s["Networks"])
    made = env.svc.configure_container(cid, "cfg", cfg.endpoints)
    assert made["Networks"]["cfg"]["Aliases"] == ["one"] and made["Networks"]["cfg"]["IPAddress"] == ""
    env.svc.disconnect("cfg", cid)
    with pytest.raises(Forbidden, match="is not connected to the network cfg"):
        env.svc.disconnect("cfg", cid)
    env.svc.connect("cfg", cid, {"Aliases": ["two"]})
    env.svc.connect("bridge", cid, {})
    assert [sorted(n) for n in told] == [[], ["cfg"], ["bridge", "cfg"]]
    assert told[1]["cfg"]["Aliases"] == ["two"]
    net = env.svc.prepare_container(cfg)
    assert net.netns_path
    assert sorted(net.settings["Networks"]) == ["bridge", "cfg"]
    assert net.settings["Networks"]["cfg"]["Aliases"] == ["two"]
    assert [x["name"] for x in bridge.interfaces_inside(net.netns_path)] == ["lo", "eth0", "eth1"]
    env.svc.release_container(cid)
    env.svc.disconnect("bridge", cid)  # stopped: only the record changes
    assert sorted(env.svc.settings(cid)["Networks"]) == ["cfg"]
    again = env.svc.prepare_container(cfg)
    assert again.netns_path
    assert sorted(again.settings["Networks"]) == ["cfg"] and again.settings["IPAddress"] == ""
    env.svc.forget_container(cid)
    assert env.svc.configured_settings(cid) is None
    env.svc.remove("cfg")


def test_host_mode_hostname_file_holds_the_configured_name(env: Env) -> None:
    cfg = env.cfg("h", network_mode="host", hostname="picked")
    c = env.svc.prepare_container(cfg)
    assert c.netns_path is None
    assert open(c.hostname_path).read().strip() == "picked"
    env.svc.release_container(cfg.container_id)
