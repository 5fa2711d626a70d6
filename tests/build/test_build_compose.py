"""docker-compose 1.29 `build` and `up --build` on a two-service project whose images are built by the daemon."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.daemon import TestDaemon

COMPOSE = """\
services:
  api:
    build:
      context: ./api
      args:
        MESSAGE: from-api
    image: {name}-api:latest
  worker:
    build: ./worker
    command: ["sh", "-c", "cat /built-by && echo worker-done"]
"""


@pytest.fixture()
def project(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> Iterator[tuple[str, str]]:
    name = "dyb" + secrets.token_hex(3)
    root = tmp_path
    (root / "api").mkdir()
    (root / "api" / "Dockerfile").write_text("FROM busybox\nARG MESSAGE\nRUN echo $MESSAGE > /msg\n"
                                             "CMD [\"cat\", \"/msg\"]\n")
    (root / "worker").mkdir()
    (root / "worker" / "Dockerfile").write_text("FROM busybox\nCOPY built-by /built-by\n")
    (root / "worker" / "built-by").write_text("worker image\n")
    (root / "docker-compose.yml").write_text(COMPOSE.format(name=name))
    yield name, str(root / "docker-compose.yml")
    label = f"label=com.docker.compose.project={name}"
    for kind in ("container", "network"):
        ids = daemon.docker(kind, "ls", "-q", *(["-a"] if kind == "container" else []), "--filter", label)
        for ref in ids.stdout.split():
            daemon.docker(kind, "rm", *(["-f"] if kind == "container" else []), ref)


def _compose(daemon: TestDaemon, project: tuple[str, str], *args: str,
             cli_build: bool = False) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (scripts/setup.sh installs Debian's package)"
    name, path = project
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    if cli_build:  # compose hands the build to the docker CLI (classic builder), pointed at the same daemon
        env.update({"COMPOSE_DOCKER_CLI_BUILD": "1", "DOCKER_BUILDKIT": "0", "DOCKER_HOST": daemon.host})
    else:  # compose builds through docker-py's POST /build
        env["COMPOSE_DOCKER_CLI_BUILD"] = "0"
    r = subprocess.run([binary, "-H", daemon.host, "-f", path, "-p", name, *args], capture_output=True,
                       text=True, timeout=180, env=env)
    assert r.returncode == 0, f"docker-compose {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def test_compose_build_and_up_build(daemon: TestDaemon, project: tuple[str, str]) -> None:
    name, _ = project
    r = _compose(daemon, project, "build")
    text = r.stdout + r.stderr
    assert "Successfully built" in text and f"Successfully tagged {name}-api:latest" in text
    assert f"Successfully tagged {name}_worker:latest" in text
    r = _compose(daemon, project, "up", "--build", "--abort-on-container-exit", cli_build=True)
    text = r.stdout + r.stderr
    assert "Using cache" in text  # the second build reuses the first one's steps
    logs = _compose(daemon, project, "logs", "--no-color").stdout
    assert "from-api" in logs and "worker image" in logs and "worker-done" in logs
    _compose(daemon, project, "down", "--rmi", "all")
    assert daemon.docker("image", "inspect", f"{name}-api:latest").returncode == 1
