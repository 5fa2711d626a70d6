"""Our daemon, driven by the docker CLI, pushes to and pulls from our registry with Basic and Bearer auth, and
`docker search` finds its repositories.

Needs the engine's registry client; until the daemon can pull, the test skips and says so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from regserver import RegistryProcess, free_port, make_token_key, write_htpasswd

pytestmark = pytest.mark.docker_cli


def _engine_has_registry_client(daemon: Any) -> bool:
    status, _, body = daemon.api("POST", "/images/create?fromImage=127.0.0.1:9/absent&tag=x", timeout=30)
    return b"no registry access" not in body


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_docker_cli_push_pull(daemon: Any, busybox_image: str, registry_factory: Callable[..., RegistryProcess],
                              work_dir: str, auth: str) -> None:
    if not _engine_has_registry_client(daemon):
        pytest.skip("the engine has no registry client yet (POST /images/create?fromImage answers "
                    "'no registry access'): push and pull through the daemon cannot run")
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret"})
    if auth == "basic":
        reg = registry_factory("--htpasswd", htp)
    else:
        port = free_port()
        reg = registry_factory("--htpasswd", htp, "--token-realm", f"http://127.0.0.1:{port}/auth",
                               "--token-service", "dockyard", "--token-issuer", "dockyard-test",
                               "--token-key", make_token_key(os.path.join(work_dir, "k.pem")), start=False)
        reg.start(addr=f"127.0.0.1:{port}")
    env = {**daemon.env, "DOCKER_CONFIG": os.path.join(work_dir, "docker-config")}

    def docker(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        from helpers.daemon import DOCKER

        return subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True, env=env, timeout=180)

    ref = f"{reg.addr}/team/busybox:{auth}"
    r = docker("login", "-u", "alice", "--password-stdin", reg.addr, input="wrong\n")
    assert r.returncode != 0 and "unauthorized" in r.stderr.lower(), r.stderr
    r = docker("login", "-u", "alice", "--password-stdin", reg.addr, input="s3cret\n")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
    assert docker("tag", busybox_image, ref).returncode == 0
    r = docker("push", ref)
    assert r.returncode == 0, r.stderr
    assert docker("rmi", ref).returncode == 0
    r = docker("pull", ref)
    assert r.returncode == 0 and "Downloaded newer image" in r.stdout, r.stdout + r.stderr
    r = docker("run", "--rm", ref, "echo", "from our registry")
    assert r.returncode == 0 and r.stdout == "from our registry\n", r.stderr
    docker("rmi", ref)


def test_docker_search_against_our_registry(daemon: Any, registry_factory: Callable[..., RegistryProcess],
                                           work_dir: str) -> None:
    if not _engine_has_registry_client(daemon):
        pytest.skip("the engine has no registry client yet: docker search through the daemon cannot run")
    htp = os.path.join(work_dir, "htpasswd")
    write_htpasswd(htp, {"alice": "s3cret"})
    reg = registry_factory("--htpasswd", htp)
    from regserver import basic

    reg.auth = basic("alice", "s3cret")
    for repo in ("library/busybox", "team/busybox-tools", "library/debian"):
        reg.push_image(repo, "v1")
    env = {**daemon.env, "DOCKER_CONFIG": os.path.join(work_dir, "docker-config")}
    from helpers.daemon import DOCKER

    def docker(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True, env=env, timeout=120)

    r = docker("login", "-u", "alice", "--password-stdin", reg.addr, input="s3cret\n")
    assert r.returncode == 0, r.stderr
    r = docker("search", "--format", "{{.Name}}", f"{reg.addr}/busybox")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["library/busybox", "team/busybox-tools"]
    r = docker("search", "--limit", "1", "--format", "{{.Name}}", f"{reg.addr}/library")
    assert r.returncode == 0 and len(r.stdout.split()) == 1, r.stdout + r.stderr
