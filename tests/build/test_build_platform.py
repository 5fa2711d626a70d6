"""``FROM --platform`` and the build's ``platform``: the platform's image is taken from a multi-platform index on
a loopback registry (or used locally when it is already of that platform), the built image declares it, and a
platform that no image exists for fails the build with docker's messages."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from ctx_files import tar_of

from dockyard.build import platforms
from dockyard.build.options import BuildError
from helpers.daemon import TestDaemon
from helpers.registry import REGISTRY_BIN, busybox_layer, files_layer, running_registry, seed_index

needs_registry = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN),
                                    reason="docker-registry (Debian package) is not installed")


def test_parse_and_match() -> None:
    assert str(platforms.parse("linux/arm64/v8")) == "linux/arm64"
    assert str(platforms.parse("linux/arm")) == "linux/arm/v7"
    assert str(platforms.parse("arm64")) == "linux/arm64"
    assert str(platforms.parse("Linux/x86_64")) == "linux/amd64"
    assert platforms.parse("linux") == platforms.host()
    with pytest.raises(BuildError, match='failed to parse platform linux/nope: "linux/nope": unknown operating '
                                         'system or architecture: invalid argument'):
        platforms.parse("linux/nope")
    with pytest.raises(BuildError):
        platforms.parse("linux//amd64")
    assert platforms.matches({"os": "linux", "architecture": "arm64", "variant": "v8"}, platforms.parse("arm64"))
    assert not platforms.matches({"os": "linux", "architecture": "amd64"}, platforms.parse("arm64"))
    with pytest.raises(BuildError, match="operating system is not supported"):
        platforms.check_runnable_os(platforms.parse("windows/amd64"))


@pytest.fixture(scope="module")
def reg_tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyplat", dir="/tmp")
    os.makedirs(os.path.join(d, "certs.d"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _df(ctx: str, text: str) -> None:
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(text)


def _arch(daemon: TestDaemon, ref: str) -> str:
    return daemon.api_json("GET", f"/images/{ref}/json")[1]["Architecture"]


@needs_registry
def test_from_platform_selects_from_an_index(daemon: TestDaemon, busybox_image: str, reg_tmp: str,
                                             tmp_path: object) -> None:
    ctx = str(tmp_path)
    with running_registry(reg_tmp, "http") as reg:
        # the layers carry the host's busybox whatever the index says, so RUN works for every entry
        seed_index(reg, "multi/base", "v1", {
            "amd64": [busybox_layer(), files_layer({"arch": b"amd64\n"})],
            "arm64": [busybox_layer(), files_layer({"arch": b"arm64\n"})]})
        base = f"{reg.host}/multi/base:v1"
        _df(ctx, f"FROM --platform=linux/arm64 {base}\nRUN cat /arch > /seen\n")
        r = daemon.cli("build", "-t", "plat/arm", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _arch(daemon, "plat/arm") == "arm64"
        assert daemon.cli("run", "--rm", "plat/arm", "cat", "/seen").stdout == "arm64\n"
        # ARG-driven (as BuildKit's predefined args are used) and through the build's platform parameter
        _df(ctx, f"ARG WANT=linux/amd64\nFROM --platform=$WANT {base}\nRUN cat /arch > /seen\n")
        r = daemon.cli("build", "-t", "plat/amd", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _arch(daemon, "plat/amd") == "amd64"
        assert daemon.cli("run", "--rm", "plat/amd", "cat", "/seen").stdout == "amd64\n"
        _df(ctx, f"FROM {base}\nRUN cat /arch > /seen\n")
        r = daemon.cli("build", "--platform", "linux/arm64", "-t", "plat/arm2", ctx)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert daemon.cli("run", "--rm", "plat/arm2", "cat", "/seen").stdout == "arm64\n"
        # no entry for it: the registry's answer, in docker's words
        _df(ctx, f"FROM --platform=linux/s390x {base}\n")
        r = daemon.cli("build", ctx)
        assert r.returncode != 0
        assert "no matching manifest for linux/s390x in the manifest list entries" in r.stderr + r.stdout
    # the registry is gone: the local image of that platform is used without asking
    _df(ctx, f"FROM --platform=linux/arm64 {base}\nRUN cat /arch > /again\n")
    r = daemon.cli("build", "-t", "plat/local", ctx)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert _arch(daemon, "plat/local") == "arm64"
    # ... and a platform the local image is not of cannot be had: the build fails, nothing is tagged
    _df(ctx, f"FROM --platform=linux/amd64 {base}\n")
    r = daemon.cli("build", "-t", "plat/none", ctx)
    assert r.returncode != 0 and reg.host in r.stderr + r.stdout
    assert daemon.api_json("GET", "/images/plat/none/json")[0] == 404


def test_from_platform_errors_and_scratch(daemon: TestDaemon, busybox_image: str, tmp_path: object) -> None:
    ctx = str(tmp_path)
    _df(ctx, "FROM --platform=windows/amd64 busybox\n")
    r = daemon.cli("build", ctx)
    assert r.returncode != 0 and "operating system is not supported" in r.stderr
    _df(ctx, "FROM --platform=linux/bogus busybox\n")
    r = daemon.cli("build", ctx)
    assert r.returncode != 0 and 'failed to parse platform linux/bogus' in r.stderr
    _df(ctx, "FROM --platform=linux/arm64 scratch\nCOPY Dockerfile /\n")
    r = daemon.cli("build", "-t", "plat/scratch", ctx)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert _arch(daemon, "plat/scratch") == "arm64"
    # the local busybox is the host's platform: asked for by name, it is used as is
    _df(ctx, f"FROM --platform={platforms.host()} busybox\nRUN true\n")
    r = daemon.cli("build", "-t", "plat/host", ctx)
    assert r.returncode == 0, (r.stdout, r.stderr)
    status, _, body = daemon.api("POST", "/v1.47/build?platform=linux/nope", tar_of(
        {"Dockerfile": "FROM busybox\n"}), headers={"Content-Type": "application/x-tar"})
    assert status == 400 and b"failed to parse platform linux/nope" in body
