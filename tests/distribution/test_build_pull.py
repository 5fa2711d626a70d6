"""The builder pulls a FROM image it does not have through the registry client."""

from __future__ import annotations

import io
import json
import tarfile

from helpers.daemon import TestDaemon
from helpers.registry import busybox_layer, files_layer, running_registry, seed_image


def _context(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = dockerfile.encode()
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_build_from_an_image_only_the_registry_has(daemon: TestDaemon, reg_tmp: str) -> None:
    with running_registry(reg_tmp, "http") as reg:
        img = seed_image(reg, "base/img", "v1", [busybox_layer(), files_layer({"hello.txt": b"base\n"})])
        ctx = _context(f"FROM {reg.host}/base/img:v1\nRUN cat /hello.txt > /copied\n")
        status, _, body = daemon.api("POST", "/build?t=built:v1", ctx,
                                     headers={"Content-Type": "application/x-tar"}, timeout=300)
        assert status == 200, body
        assert b'"error"' not in body, body
        st, info = daemon.api_json("GET", f"/images/{reg.host}/base/img:v1/json")
        assert st == 200 and info["Id"] == img["config"]
        run = daemon.docker("run", "--rm", "built:v1", "cat", "/copied")
        assert run.stdout == "base\n", run.stderr + json.dumps(body.decode()[-500:])
