"""`container update --publish-add/--publish-rm` bodies, the state timestamps and the stopped-container view."""

from __future__ import annotations

import pytest

from dockyard.containers import create, spec, views
from dockyard.containers.state import Container, State
from dockyard.errors import InvalidParameter, NotFound


def test_port_changes_normalize_keys_and_bindings() -> None:
    add, remove = create.port_changes({"PortBindingsAdd": {"80": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                                           "53/udp": None},
                                       "PortBindingsRemove": ["81", "82/udp"]})
    assert add == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                   "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert remove == ["81/tcp", "82/udp"]
    assert create.port_changes({"Memory": 1}) == ({}, [])


@pytest.mark.parametrize("body", [{"PortBindingsAdd": ["80"]}, {"PortBindingsRemove": "80"},
                                  {"PortBindingsRemove": ["http"]}, {"PortBindingsAdd": {"/tcp": []}}])
def test_port_changes_reject_malformed(body: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        create.port_changes(body)


def test_merged_port_bindings() -> None:
    cur = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    b = {"HostIp": "127.0.0.1", "HostPort": "9090"}
    assert create.merged_port_bindings(cur, {"80/tcp": [b]}, [], strict=True) == \
        {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, b]}
    assert create.merged_port_bindings(cur, {"80/tcp": [cur["80/tcp"][0]]}, [], strict=True) == cur  # no duplicate
    assert create.merged_port_bindings(cur, {}, ["80/tcp"], strict=True) == {}
    assert cur == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}  # the input is not changed
    with pytest.raises(NotFound):
        create.merged_port_bindings(cur, {}, ["81/tcp"], strict=True)
    assert create.merged_port_bindings(cur, {}, ["81/tcp"], strict=False) == cur


def test_changes_resources_ignores_zero_values() -> None:
    assert not create.changes_resources({"PortBindingsAdd": {}, "Memory": 0, "CpuShares": None})
    assert create.changes_resources({"Memory": 64 << 20})


def test_started_at_taken_before_the_runtime_is_kept() -> None:
    st = State()
    st.set_running(42, "2026-01-01T00:00:00.000000001Z")
    assert st.StartedAt == "2026-01-01T00:00:00.000000001Z"
    st.set_running(42)
    assert st.StartedAt > "2026-01-01"


def test_oom_score_adj_refusal_only_when_lowering() -> None:
    assert spec.oom_score_adj_refusal({}) is None
    assert spec.oom_score_adj_refusal({"OomScoreAdj": 0}) is None
    assert spec.oom_score_adj_refusal({"OomScoreAdj": 1000}) is None
    with open("/proc/self/status") as f:
        eff = next(int(ln.split()[1], 16) for ln in f if ln.startswith("CapEff:"))
    with open("/proc/self/oom_score_adj") as f:
        own = int(f.read())
    refusal = spec.oom_score_adj_refusal({"OomScoreAdj": -1000})
    if eff & (1 << spec.CAP_SYS_RESOURCE) or own == -1000:
        assert refusal is None
    else:
        assert refusal is not None and "permission denied" in refusal and "-1000" in refusal


def test_stopped_container_keeps_network_config_not_addresses() -> None:
    c = Container(id="c" * 64, name="x", created="2026-01-01T00:00:00Z", image_id="sha256:" + "0" * 64,
                  image="busybox", config={}, host_config={"NetworkMode": "appnet"})
    c.network_settings = {"IPAddress": "10.0.0.2", "SandboxKey": "/run/netns/x",
                          "Ports": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                          "Networks": {"appnet": {"NetworkID": "n1", "IPAddress": "10.0.0.2", "Aliases": ["web"],
                                                  "EndpointID": "e1", "Gateway": "10.0.0.1", "MacAddress": "m"}}}
    c.state.set_running(7)
    assert views.network_settings(c)["Networks"]["appnet"]["IPAddress"] == "10.0.0.2"
    c.state.set_stopped(0)
    ns = views.network_settings(c)
    ep = ns["Networks"]["appnet"]
    assert (ep["NetworkID"], ep["Aliases"]) == ("n1", ["web"])
    assert (ep["IPAddress"], ep["EndpointID"], ep["Gateway"], ep["MacAddress"]) == ("", "", "", "")
    assert (ns["IPAddress"], ns["SandboxKey"], ns["Ports"]) == ("", "", {})
