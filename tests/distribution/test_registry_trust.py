"""Which registries get plain http, and whose CA is trusted, through the daemon and the docker CLI.

Loopback registries are insecure by default (as in docker), which would hide both settings, so these registries
listen on another local address: the test daemon's own bridge gateway (10.2xx.y.1, on the host, no traffic
leaves it). An ``insecure-registries`` CIDR (daemon.json, and ``--insecure-registry``) lets a plain-http
registry on it be used; without one the daemon asks for https and fails with docker's words. A TLS registry's
CA placed in docker's ``certs.d`` layout under the default ``/etc/dockyard/certs.d`` or ``/etc/docker/certs.d``
is trusted; without it the pull fails on the unknown authority."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon, finish_daemon, start_daemon
from helpers.registry import Registry, busybox_layer, files_layer, seed_image


def _gateway(d: TestDaemon) -> str:
    return d.bip.split("/", 1)[0]


def _subnet(d: TestDaemon) -> str:
    return str(ipaddress.ip_network(d.bip, strict=False))


@pytest.fixture()
def cidr_daemon(reg_tmp: str) -> Iterator[TestDaemon]:
    """A daemon whose daemon.json names its own bridge's subnet as insecure."""
    conf = os.path.join(reg_tmp, f"daemon-cidr-{os.getpid()}.json")
    d = TestDaemon(["--config-file", conf])
    with open(conf, "w") as f:
        json.dump({"insecure-registries": [_subnet(d)]}, f)
    d.start()
    try:
        yield d
    finally:
        finish_daemon(d)


def _started(reg: Registry) -> Iterator[Registry]:
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def test_insecure_registry_cidr_allows_plain_http(cidr_daemon: TestDaemon, daemon: TestDaemon,
                                                  reg_tmp: str) -> None:
    gen = _started(Registry(reg_tmp, "http", bind=_gateway(cidr_daemon)))
    reg = next(gen)
    try:
        img = seed_image(reg, "team/cidr", "v1", [files_layer({"hello": b"over plain http\n"})], cmd=["cat", "/hello"])
        ref = f"{reg.host}/team/cidr:v1"
        assert not ipaddress.ip_address(reg.host.split(":")[0]).is_loopback

        # no CIDR names it: https is required, and a plain-http registry is refused in docker's words
        r = daemon.docker("pull", ref)
        assert r.returncode == 1, r.stdout
        assert f'Get "https://{reg.host}/v2/": http: server gave HTTP response to HTTPS client' in r.stderr, r.stderr
        assert daemon.api("GET", f"/images/{ref}/json")[0] == 404

        # the CIDR from daemon.json
        r = cidr_daemon.docker("pull", ref)
        assert r.returncode == 0, r.stderr + cidr_daemon.log_tail(20)
        st, info = cidr_daemon.api_json("GET", f"/images/{ref}/json")
        assert st == 200 and info["Id"] == img["config"]

        # the same CIDR given as --insecure-registry
        d2 = start_daemon(["--insecure-registry", _subnet(cidr_daemon)])
        try:
            r = d2.docker("pull", ref)
            assert r.returncode == 0, r.stderr
            st, info = d2.api_json("GET", f"/images/{ref}/json")
            assert st == 200 and info["Id"] == img["config"]
            st, info = d2.api_json("GET", "/info")
            assert info["RegistryConfig"]["InsecureRegistryCIDRs"] == [_subnet(cidr_daemon), "127.0.0.0/8"]
            shown = d2.docker("info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}").stdout
            assert json.loads(shown) == [_subnet(cidr_daemon), "127.0.0.0/8"]
        finally:
            finish_daemon(d2)
    finally:
        gen.close()


class _HostDir:
    """``<root>/<host>/ca.crt``, made for one test; removes exactly what it made."""

    def __init__(self, root: str, host: str, ca: str) -> None:
        self.made: list[str] = []
        for d in (os.path.dirname(root), root, os.path.join(root, host)):
            if not os.path.isdir(d):
                os.mkdir(d)
                self.made.append(d)
        path = os.path.join(root, host, "ca.crt")
        shutil.copy(ca, path)
        self.file = path

    def remove(self) -> None:
        os.unlink(self.file)
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass


@pytest.mark.parametrize("root", ["/etc/dockyard/certs.d", "/etc/docker/certs.d"])
def test_ca_from_the_default_certs_d(root: str, reg_tmp: str) -> None:
    d = start_daemon()  # no --registry-certs-dir: the default locations
    made: _HostDir | None = None
    gen = _started(Registry(reg_tmp, "tls", bind=_gateway(d)))
    try:
        reg = next(gen)
        assert reg.ca is not None
        seed_image(reg, "team/tls", "v1", [busybox_layer(), files_layer({"t": b"over tls\n"})], cmd=["cat", "/t"])
        ref = f"{reg.host}/team/tls:v1"

        r = d.docker("pull", ref)
        assert r.returncode == 1
        assert "x509: certificate signed by unknown authority" in r.stderr, r.stderr
        assert d.api("GET", f"/images/{ref}/json")[0] == 404

        made = _HostDir(root, reg.host, reg.ca.cert_path)
        r = d.docker("pull", ref)
        assert r.returncode == 0, r.stderr + d.log_tail(20)
        run = d.docker("run", "--rm", ref)
        assert run.stdout == "over tls\n", run.stderr
    finally:
        if made is not None:
            made.remove()
        gen.close()
        finish_daemon(d)
    assert not os.path.exists(os.path.join(root, reg.host))
