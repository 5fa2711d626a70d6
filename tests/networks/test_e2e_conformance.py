"""Network details real clients check (docker-py's own suite): IPAM auxiliary addresses, endpoint driver
options and MAC addresses, names with spaces — through the API against a real daemon."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import docker
import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> Iterator[docker.DockerClient]:
    c = daemon.client()
    yield c
    c.close()


def _subnet(daemon: TestDaemon, third: int) -> ipaddress.IPv4Network:
    """A /24 next to the daemon's own bridge subnet (free on the host, like the daemon's)."""
    a, b = daemon.bip.split(".")[1:3]
    return ipaddress.IPv4Network(f"10.{a}.{(int(b) + third) % 256}.0/24")


def test_aux_addresses_kept_and_reserved(daemon: TestDaemon, client: docker.DockerClient) -> None:
    sub = _subnet(daemon, 1)
    hosts = list(sub.hosts())
    aux = {"a": str(hosts[1]), "b": str(hosts[2])}  # the gateway takes hosts[0]
    pool = docker.types.IPAMPool(subnet=str(sub), gateway=str(hosts[0]), aux_addresses=aux)
    net = client.networks.create("aux net", ipam=docker.types.IPAMConfig(pool_configs=[pool]))
    c = None
    try:
        cfg = client.api.inspect_network("aux net")["IPAM"]["Config"]
        assert cfg == [{"Subnet": str(sub), "Gateway": str(hosts[0]), "AuxiliaryAddresses": aux}]
        c = client.containers.run("busybox", ["sleep", "60"], detach=True, network="aux net")
        c.reload()
        ip = c.attrs["NetworkSettings"]["Networks"]["aux net"]["IPAddress"]
        assert ip == str(hosts[3])  # the first free one after the reserved auxiliaries
        with pytest.raises(docker.errors.APIError) as busy:
            client.api.remove_network("aux net")  # in use: refused
        assert busy.value.status_code == 403 and "has active endpoints" in str(busy.value)
    finally:
        if c is not None:
            c.remove(force=True)
        net.remove()
    assert client.networks.list(names=["aux net"]) == []
    with pytest.raises(docker.errors.APIError) as exc:
        client.networks.create("aux bad", ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=str(sub), aux_addresses={"x": "192.0.2.1"})]))
    assert exc.value.status_code == 403  # as dockerd 20.10 answers it
    assert client.networks.list(names=["aux bad"]) == []


def test_endpoint_driver_opts_and_mac(client: docker.DockerClient) -> None:
    api = client.api
    c = api.create_container("busybox", ["sleep", "60"], mac_address="02:42:ac:11:00:0a",
                             networking_config=api.create_networking_config(
                                 {"bridge": api.create_endpoint_config(driver_opt={"com.docker-py.setting": "on"})}))
    try:
        api.start(c)
        info = api.inspect_container(c)
        assert info["NetworkSettings"]["MacAddress"] == "02:42:ac:11:00:0a"
        bridge = info["NetworkSettings"]["Networks"]["bridge"]
        assert bridge["DriverOpts"] == {"com.docker-py.setting": "on"} and bridge["MacAddress"] == "02:42:ac:11:00:0a"
        out = client.containers.get(c["Id"]).exec_run("cat /sys/class/net/eth0/address").output
        assert out == b"02:42:ac:11:00:0a\n"
    finally:
        api.remove_container(c, force=True)


def test_connect_created_container_with_mac(client: docker.DockerClient) -> None:
    net = client.networks.create("mac net")
    c = client.api.create_container("busybox", ["sleep", "60"])
    try:
        client.api.connect_container_to_network(c, "mac net", mac_address="02:42:ac:11:00:02")
        assert client.api.inspect_container(c)["NetworkSettings"]["Networks"]["mac net"]["MacAddress"] == \
            "02:42:ac:11:00:02"
    finally:
        client.api.remove_container(c, force=True)
        net.remove()


def test_network_name_with_space(daemon: TestDaemon, client: docker.DockerClient) -> None:
    net_id = client.api.create_network("test 01")["Id"]
    assert client.api.inspect_network("test 01")["Id"] == net_id
    assert daemon.api("GET", "/networks/test%2001")[0] == 200
    client.api.remove_network("test 01")
    assert daemon.api("GET", "/networks/test%2001")[0] == 404


def test_network_driver_options_returned_exactly_as_given(daemon: TestDaemon, client: docker.DockerClient) -> None:
    opts = {"com.docker.network.bridge.enable_icc": "true", "com.docker.network.driver.mtu": "1400",
            "org.example.anything": "kept as given"}
    client.api.create_network("opts net", driver="bridge", options=opts)
    plain = client.api.create_network("plain opts net")["Id"]
    try:
        assert client.api.inspect_network("opts net")["Options"] == opts
        assert client.api.inspect_network(plain)["Options"] == {}
        listed = {n["Name"]: n for n in client.api.networks(names=["opts net"])}
        assert listed["opts net"]["Options"] == opts
        p = daemon.docker("network", "inspect", "-f", "{{json .Options}}", "opts net")
        assert p.returncode == 0 and json.loads(p.stdout) == opts
    finally:
        client.api.remove_network("opts net")
        client.api.remove_network(plain)


def test_network_inspect_containers_have_dockers_fields(daemon: TestDaemon, client: docker.DockerClient) -> None:
    sub = _subnet(daemon, 2)
    net = client.networks.create("members net", ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=str(sub))]))
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, network="members net", name="member1")
    try:
        c.reload()
        ep = c.attrs["NetworkSettings"]["Networks"]["members net"]
        members = client.api.inspect_network("members net")["Containers"]
        assert members == {c.id: {"Name": "member1", "EndpointID": ep["EndpointID"], "MacAddress": ep["MacAddress"],
                                  "IPv4Address": f"{ep['IPAddress']}/{sub.prefixlen}", "IPv6Address": ""}}
    finally:
        c.remove(force=True)
        net.remove()
