"""Pure parts of networking: -p parsing, PortBindings, /etc files, DNS messages, list filters."""

from __future__ import annotations

import struct

import pytest

from dockyard.errors import InvalidParameter, SystemError_
from dockyard.networks import dns, etcfiles
from dockyard.networks.models import NetworkRecord, PortMapping
from dockyard.networks.portmap import (
    PortAllocator,
    PortRequest,
    by_family,
    parse_publish,
    requests_from,
    settings_ports,
)
from dockyard.networks.views import matches_filters, network_json, normalize_filters


def test_parse_publish_forms() -> None:
    # no host address is the default binding (""): 0.0.0.0, and [::] too on a dual-stack network (by_family)
    assert parse_publish("80") == [PortRequest("tcp", 80, "", 0, 0)]
    assert parse_publish("8080:80") == [PortRequest("tcp", 80, "", 8080, 8080)]
    assert parse_publish("127.0.0.1:8080:80/udp") == [PortRequest("udp", 80, "127.0.0.1", 8080, 8080)]
    assert parse_publish("127.0.0.1::80") == [PortRequest("tcp", 80, "127.0.0.1", 0, 0)]
    assert parse_publish("[::1]::80") == [PortRequest("tcp", 80, "::1", 0, 0)]
    assert parse_publish("8000-8010:80") == [PortRequest("tcp", 80, "", 8000, 8010)]
    assert parse_publish("9000-9001:90-91") == [PortRequest("tcp", 90, "", 9000, 9000),
                                                 PortRequest("tcp", 91, "", 9001, 9001)]
    with pytest.raises(InvalidParameter):
        parse_publish("9000-9002:90-91")
    with pytest.raises(InvalidParameter):
        parse_publish("x:80")


def test_requests_from_port_bindings_and_publish_all() -> None:
    reqs = requests_from({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": None,
                          "81/tcp": [{"HostIp": "::", "HostPort": "81"}]},
                         True, {"80/tcp": {}, "443/tcp": {}})
    assert PortRequest("tcp", 80, "0.0.0.0", 8080, 8080) in reqs
    assert PortRequest("udp", 53, "0.0.0.0", 0, 0) in reqs
    assert PortRequest("tcp", 443, "0.0.0.0", 0, 0) in reqs
    assert not [r for r in reqs if r.container_port == 81]
    assert len(reqs) == 3


def test_requests_on_a_dual_stack_network_add_the_ipv6_twin() -> None:
    reqs = requests_from({"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                          "81/tcp": [{"HostIp": "::", "HostPort": "81"}],
                          "82/tcp": [{"HostIp": "0.0.0.0", "HostPort": ""}],
                          "83/tcp": [{"HostIp": "[::1]", "HostPort": "83"}]}, False, None, dual_stack=True)
    assert reqs == [PortRequest("tcp", 80, "0.0.0.0", 8080, 8080),
                    PortRequest("tcp", 80, "::", 8080, 8080, same_port_as_previous=True),
                    PortRequest("tcp", 81, "::", 81, 81),
                    PortRequest("tcp", 82, "0.0.0.0", 0, 0),
                    PortRequest("tcp", 83, "::1", 83, 83)]
    assert by_family(parse_publish("80"), dual_stack=False) == [PortRequest("tcp", 80, "0.0.0.0", 0, 0)]


def test_allocator_gives_both_families_one_port_and_refuses_all_or_nothing() -> None:
    import socket

    alloc = PortAllocator()
    try:
        got = alloc.reserve("a", by_family(parse_publish("80"), dual_stack=True))
        assert [(m.host_ip, m.host_port) for m in got] == [("0.0.0.0", got[0].host_port), ("::", got[0].host_port)]
        holder = socket.socket(socket.AF_INET6)
        holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        holder.bind(("::", 0))
        port = holder.getsockname()[1]
        with pytest.raises(SystemError_, match=rf"Bind for \[::\]:{port} failed: port is already allocated"):
            alloc.reserve("b", by_family(parse_publish(f"{port}:80"), dual_stack=True))
        holder.close()
        probe = socket.socket()
        probe.bind(("0.0.0.0", port))  # the IPv4 side was not kept by the refused reservation
        probe.close()
    finally:
        alloc.release_all()


def test_settings_ports_shape() -> None:
    out = settings_ports([PortMapping("tcp", 80, "0.0.0.0", 8080)], {"80/tcp": {}, "443/tcp": {}})
    assert out == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}


def test_hosts_and_resolv() -> None:
    extra = [etcfiles.parse_extra_host("gw:host-gateway", "10.0.0.1"), etcfiles.parse_extra_host("a=1.2.3.4", "")]
    assert extra == [("10.0.0.1", "gw"), ("1.2.3.4", "a")]
    text = etcfiles.hosts_text("web", "", ["10.0.0.2"], extra)
    assert text.startswith("127.0.0.1\tlocalhost\n") and text.endswith("10.0.0.1\tgw\n1.2.3.4\ta\n10.0.0.2\tweb\n")
    with pytest.raises(InvalidParameter):
        etcfiles.parse_extra_host("nohost", "")
    host = etcfiles.parse_resolv_conf("nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch a.test\noptions edns0\n")
    assert etcfiles.resolv_text(embedded=False, host=host, dns=[], dns_search=[], dns_options=[]) == \
        "nameserver 192.0.2.1\nsearch a.test\noptions edns0\n"
    only_stub = etcfiles.parse_resolv_conf("nameserver 127.0.0.53\n")
    assert etcfiles.resolv_text(embedded=False, host=only_stub, dns=[], dns_search=[], dns_options=[]) == \
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert etcfiles.resolv_text(embedded=True, host=host, dns=["1.1.1.1"], dns_search=["b.test"],
                                dns_options=[]) == "nameserver 127.0.0.11\nsearch b.test\noptions edns0 ndots:0\n"


def _query(name: str, qtype: int = 1) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def test_dns_question_and_answer() -> None:
    q = _query("Web.Example")
    assert dns.parse_question(q) == (0x1234, 0x0100, "web.example", 1, len(q))
    ans = dns.build_answer(q, ["10.0.0.2", "10.0.0.3"])
    qid, flags, qd, an = struct.unpack("!HHHH", ans[:8])
    assert (qid, qd, an) == (0x1234, 1, 2) and flags & 0x8000 and flags & 0x0100
    assert ans[-4:] == bytes([10, 0, 0, 3])
    assert struct.unpack("!H", dns.servfail(q)[2:4])[0] & 0xF == 2
    assert dns.parse_question(b"\x00" * 5) is None
    assert dns.parse_question(q[:-3]) is None


def _net(**kw: object) -> NetworkRecord:
    base: dict[str, object] = {"id": "abc123" + "0" * 58, "name": "front", "driver": "bridge",
                               "created": "2026-01-01T00:00:00.0Z", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"}
    base.update(kw)
    return NetworkRecord(**base)  # type: ignore[arg-type]


def test_filters() -> None:
    n = _net(labels={"tier": "web"})
    assert matches_filters(n, normalize_filters({"name": ["ron"]}), in_use=False)
    assert not matches_filters(n, normalize_filters({"name": ["back"]}), in_use=False)
    assert matches_filters(n, normalize_filters({"label": {"tier=web": True}}), in_use=False)
    assert not matches_filters(n, normalize_filters({"label": ["tier=db"]}), in_use=False)
    assert matches_filters(n, normalize_filters({"id": ["abc1"], "type": ["custom"], "driver": ["bridge"]}),
                           in_use=False)
    assert not matches_filters(n, normalize_filters({"dangling": ["true"]}), in_use=True)
    assert matches_filters(n, normalize_filters({"dangling": ["false"]}), in_use=True)
    with pytest.raises(InvalidParameter):
        normalize_filters({"bogus": ["x"]})


def test_network_json_shape() -> None:
    out = network_json(_net(ip_range="10.1.0.128/25"), [], with_containers=True)
    assert out["IPAM"]["Config"] == [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1", "IPRange": "10.1.0.128/25"}]
    assert out["Scope"] == "local" and out["Containers"] == {} and out["Driver"] == "bridge"
