"""The build's ``outputs``: ``type=local,dest=`` writes the target stage's filesystem into a directory,
``type=tar,dest=`` into one tar file (both on the daemon's host, nothing tagged); bad outputs are refused with a
400 before the build starts, as dockerd refuses them."""

from __future__ import annotations

import json
import os
import stat
import tarfile

import pytest
from ctx_files import tar_of

from helpers.daemon import TestDaemon

DF = ("FROM busybox AS build\nRUN mkdir /out && echo built > /out/result && ln -s result /out/link "
      "&& chmod 640 /out/result\n"
      "FROM scratch\nCOPY --from=build /out/ /\n")


def _ctx(root: str) -> None:
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write(DF)


def test_local_output_through_the_cli(dy: TestDaemon, ctxdir: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    _ctx(ctxdir)
    dest = str(tmp_path_factory.mktemp("out"))
    r = dy.cli("build", "-t", "out/local", "-o", f"type=local,dest={dest}", ctxdir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert sorted(os.listdir(dest)) == ["link", "result"]
    with open(os.path.join(dest, "result")) as f:
        assert f.read() == "built\n"
    assert os.readlink(os.path.join(dest, "link")) == "result"
    assert stat.S_IMODE(os.lstat(os.path.join(dest, "result")).st_mode) == 0o640
    assert dy.api_json("GET", "/images/out/local/json")[0] == 404, "a local output tags nothing"
    rel = os.path.relpath(str(tmp_path_factory.mktemp("out2")))  # buildx's shorthand: a bare path is local
    r = dy.cli("build", "-o", rel, ctxdir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert sorted(os.listdir(rel)) == ["link", "result"]


def _build(dy: TestDaemon, outputs: object, tag: str = "") -> tuple[int, bytes]:
    from urllib.parse import quote

    q = f"outputs={quote(json.dumps(outputs))}" + (f"&t={tag}" if tag else "")
    status, _, body = dy.api("POST", f"/v1.47/build?{q}", tar_of({"Dockerfile": DF}),
                             headers={"Content-Type": "application/x-tar"}, timeout=120)
    return status, body


def test_tar_output_and_refusals_through_the_api(dy: TestDaemon, tmp_path_factory: pytest.TempPathFactory) -> None:
    d = str(tmp_path_factory.mktemp("tarout"))
    dest = os.path.join(d, "rootfs.tar")
    status, body = _build(dy, [{"Type": "tar", "Attrs": {"dest": dest}}], tag="out/tar")
    assert status == 200 and b"errorDetail" not in body, body
    with tarfile.open(dest) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert sorted(members) == ["link", "result"]
        assert members["link"].issym() and members["link"].linkname == "result"
        assert tf.extractfile("result").read() == b"built\n"  # type: ignore[union-attr]
    assert os.listdir(d) == ["rootfs.tar"], "written aside, then renamed"
    assert dy.api_json("GET", "/images/out/tar/json")[0] == 404
    # the default exporter (and its names) still makes and tags the image
    status, body = _build(dy, [{"Type": "moby"}], tag="out/image")
    assert status == 200 and dy.api_json("GET", "/images/out/image/json")[0] == 200
    for outputs, message in (
            ([{"Type": "local", "Attrs": {"dest": d}}, {"Type": "tar", "Attrs": {"dest": dest}}],
             b"multiple outputs not supported"),
            ([{"Type": "registry"}], b'exporter \\"registry\\" could not be found'),
            ([{"Type": "local", "Attrs": {}}], b"dest is required for local exporter"),
            ([{"Type": "tar", "Attrs": {"dest": "-"}}], b"dest - needs a client session"),
            ([{"Type": "local", "Attrs": {"dest": "rel/dir"}}], b"dest must be an absolute path")):
        status, body = _build(dy, outputs)
        assert status == 400 and message in body, (outputs, status, body)
