"""Our pull-through cache as the engine's `registry-mirrors`: docker.io names pulled through it, then served from
its cache once the upstream is gone."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest
from regserver import RegistryProcess, skopeo

from helpers.daemon import finish_daemon, start_daemon

pytestmark = [pytest.mark.docker_cli,
              pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")]


def test_engine_mirror_is_our_proxy(daemon: Any, busybox_image: str, registry_factory: Callable[..., RegistryProcess],
                                    work_dir: str) -> None:
    status, _, body = daemon.api("POST", "/images/create?fromImage=127.0.0.1:9/absent&tag=x", timeout=30)
    if b"no registry access" in body:
        pytest.skip("the engine has no registry client yet")
    archive = os.path.join(work_dir, "busybox.tar")
    daemon.cli("save", "-o", archive, busybox_image, check=True)
    upstream = registry_factory()
    r = skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}",
               f"docker://{upstream.addr}/library/busybox:mirrored")
    assert r.returncode == 0, r.stderr
    proxy = registry_factory("--proxy", upstream.url)
    conf = os.path.join(work_dir, "daemon.json")
    with open(conf, "w") as f:
        json.dump({"registry-mirrors": [proxy.url]}, f)
    d = start_daemon(["--config-file", conf])
    try:
        r = d.docker("pull", "busybox:mirrored")
        assert r.returncode == 0, r.stderr + d.log_tail(20)
        assert r.stdout.rstrip().endswith("docker.io/library/busybox:mirrored"), r.stdout
        run = d.docker("run", "--rm", "busybox:mirrored", "echo", "through the mirror")
        assert run.returncode == 0 and run.stdout == "through the mirror\n", run.stderr
        assert proxy.request("GET", "/v2/_catalog").json() == {"repositories": ["library/busybox"]}
        upstream.stop()
        assert d.docker("rmi", "busybox:mirrored").returncode == 0
        r = d.docker("pull", "busybox:mirrored")  # the upstream is gone: the cache answers
        assert r.returncode == 0, r.stderr + d.log_tail(20)
    finally:
        finish_daemon(d)
