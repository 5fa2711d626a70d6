"""Registry mirrors from daemon.json, distribution inspect, search against a v1 search endpoint, docker import
from a URL, and docker's multi-line progress on a terminal."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from helpers.daemon import TestDaemon, finish_daemon, start_daemon
from helpers.registry import Registry, busybox_layer, files_layer, running_registry, seed_image, seed_index

RESULTS = [
    {"name": "busybox", "description": "Busybox base image.", "star_count": 3000, "is_official": True,
     "is_automated": False},
    {"name": "someone/busybox-extra", "description": "A busybox with a very long description that goes on "
     "and on past the table's width", "star_count": 3, "is_official": False, "is_automated": False},
]


@pytest.fixture(scope="module")
def fileserver(reg_tmp: str) -> Iterator[dict[str, Any]]:
    """A loopback HTTP server: /v1/search (registry v1 search) and /rootfs.tar (for docker import URL)."""
    seen: list[str] = []
    tar = files_layer({"imported.txt": b"from a URL\n"})
    foreign = files_layer({"foreign.txt": b"served from elsewhere\n"})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            u = urllib.parse.urlparse(self.path)
            if u.path == "/v1/search":
                q = urllib.parse.parse_qs(u.query)
                term = q.get("q", [""])[0]
                res = [r for r in RESULTS if term in str(r["name"])][: int(q.get("n", ["25"])[0])]
                body = json.dumps({"num_results": len(res), "query": term, "results": res}).encode()
                ctype = "application/json"
            elif u.path == "/rootfs.tar":
                body, ctype = tar, "application/x-tar"
            elif u.path == "/foreign.tar.gz":
                body, ctype = gzip.compress(foreign, mtime=0), "application/octet-stream"
            elif u.path == "/v2/":
                body, ctype = b"{}", "application/json"
            elif u.path == "/v2/old/app/manifests/v1":  # a registry still serving schema 1
                body = json.dumps({"schemaVersion": 1, "name": "old/app", "tag": "v1", "fsLayers": [],
                                   "history": []}).encode()
                ctype = "application/vnd.docker.distribution.manifest.v1+prettyjws"
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield {"host": f"127.0.0.1:{srv.server_address[1]}", "seen": seen, "foreign": foreign}
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def plain(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "http") as reg:
        yield reg


def test_mirror_serves_docker_io_names(reg_tmp: str, plain: Registry) -> None:
    img = seed_image(plain, "library/mirrored", "v1", [busybox_layer(), files_layer({"m": b"mirror\n"})],
                     cmd=["cat", "/m"])
    conf = os.path.join(reg_tmp, "daemon-mirror.json")
    with open(conf, "w") as f:
        json.dump({"registry-mirrors": [f"http://{plain.host}"], "max-concurrent-downloads": 1,
                   "insecure-registries": ["10.99.0.0/16"]}, f)
    d = start_daemon(["--config-file", conf])
    try:
        r = d.docker("pull", "mirrored:v1")
        assert r.returncode == 0, r.stderr + d.log_tail(20)
        assert "v1: Pulling from library/mirrored" in r.stdout
        assert r.stdout.rstrip().endswith("docker.io/library/mirrored:v1")
        st, info = d.api_json("GET", "/images/mirrored:v1/json")
        assert info["Id"] == img["config"]
        assert info["RepoDigests"] == [f"mirrored@{img['manifest']}"]
        assert ": Waiting" in r.stdout  # max-concurrent-downloads 1: the second layer waits its turn
        run = d.docker("run", "--rm", "mirrored:v1")
        assert run.stdout == "mirror\n", run.stderr
    finally:
        finish_daemon(d)


def test_bad_registry_options_stop_the_daemon(reg_tmp: str) -> None:
    conf = os.path.join(reg_tmp, "daemon-bad.json")
    with open(conf, "w") as f:
        json.dump({"registry-mirrors": ["ftp://mirror.example"]}, f)
    d = TestDaemon(["--config-file", conf])
    with pytest.raises(RuntimeError) as exc:
        d.start(timeout=10)
    assert "invalid mirror" in str(exc.value)
    finish_daemon(d)


def test_distribution_inspect(daemon: TestDaemon, plain: Registry) -> None:
    idx = seed_index(plain, "team/insp", "v1", {"amd64": [files_layer({"a": b"1"})],
                                                "arm64": [files_layer({"b": b"2"})]})
    client = daemon.client()
    out = client.api.inspect_distribution(f"{plain.host}/team/insp:v1")
    assert out["Descriptor"]["digest"] == idx["index"]
    assert out["Descriptor"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(p["architecture"] for p in out["Platforms"]) == ["amd64", "arm64"]
    one = client.api.inspect_distribution(f"{plain.host}/team/insp:v1-arm64")
    assert one["Platforms"] == [{"architecture": "arm64", "os": "linux"}]
    status, _, body = daemon.api("GET", f"/distribution/{plain.host}/team/insp:nope/json")
    assert status == 404 and b"manifest unknown" in body


def test_search(daemon: TestDaemon, fileserver: dict[str, Any]) -> None:
    host = fileserver["host"]
    st, res = daemon.api_json("GET", f"/images/search?term={host}/busybox&limit=5")
    assert st == 200 and [r["name"] for r in res] == ["busybox", "someone/busybox-extra"]
    st, res = daemon.api_json("GET", f"/images/search?term={host}/busybox&filters="
                              + urllib.parse.quote(json.dumps({"is-official": ["true"]})))
    assert [r["name"] for r in res] == ["busybox"]
    r = daemon.cli("search", "--limit", "1", f"{host}/busybox")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert len(lines) == 2 and lines[1].startswith("busybox") and lines[1].rstrip().endswith("[OK]")
    r = daemon.cli("search", "--format", "{{.Name}}: {{.StarCount}}", f"{host}/busybox")
    assert r.stdout.splitlines() == ["busybox: 3000", "someone/busybox-extra: 3"]
    r = daemon.docker("search", "--filter", "stars=100", f"{host}/busybox")
    assert r.returncode == 0, r.stderr
    assert "busybox" in r.stdout and "busybox-extra" not in r.stdout
    st, _ = daemon.api_json("GET", f"/images/search?term={host}/busybox&filters="
                            + urllib.parse.quote(json.dumps({"color": ["red"]})))
    assert st == 400


def test_import_from_url(daemon: TestDaemon, busybox_image: str, fileserver: dict[str, Any]) -> None:
    url = f"http://{fileserver['host']}/rootfs.tar"
    r = daemon.docker("import", url, "fromurl:v1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"Downloading from {url}"
    assert r.stdout.splitlines()[-1].startswith("sha256:")
    st, info = daemon.api_json("GET", "/images/fromurl:v1/json")
    assert st == 200 and info["Comment"] == f"Imported from {url}"
    r = daemon.cli("import", url, "fromurl:v2")
    assert r.returncode == 0, r.stderr
    status, _, body = daemon.api("POST", "/images/create?fromSrc=ftp://x/y.tar")
    assert status == 400


def test_terminal_progress_redraws_lines_in_place(daemon: TestDaemon, plain: Registry) -> None:
    import pexpect

    seed_image(plain, "team/tty", "v1", [files_layer({"big": os.urandom(2_000_000)}), files_layer({"s": b"s"})])
    child = pexpect.spawn(os.path.join(os.path.dirname(daemon.argv()[0]), "dockyard"),
                          ["pull", f"{plain.host}/team/tty:v1"], env=daemon.env, timeout=60)
    child.expect(pexpect.EOF)
    out = child.before.decode()
    child.close()
    assert child.exitstatus == 0, out
    assert "\x1b[2K" in out and "A\r\x1b[2K" in out  # cursor up, clear line: one line per layer redrawn
    assert "Downloading" in out and "Pull complete" in out


def test_schema1_is_refused_with_dockers_message(daemon: TestDaemon, fileserver: dict[str, Any]) -> None:
    host = fileserver["host"]
    r = daemon.docker("pull", f"{host}/old/app:v1")
    assert r.returncode == 1
    assert ("Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. "
            f"Suggest the author of {host}/old/app:v1 to upgrade the image") in r.stderr, r.stderr


def _put_manifest_with(plain: Registry, repo: str, layers: list[dict[str, Any]], diff_ids: list[str],
                       media_type: str, config_type: str) -> None:
    from helpers.registry import image_config

    cfg = image_config(diff_ids, cmd=["cat", "/foreign.txt"])
    cfg_digest = plain.put_blob(repo, cfg)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": media_type,
                           "config": {"mediaType": config_type, "digest": cfg_digest, "size": len(cfg)},
                           "layers": layers}).encode()
    plain.put_manifest(repo, "v1", manifest, media_type)


def test_foreign_layers_from_their_urls(daemon: TestDaemon, plain: Registry, fileserver: dict[str, Any]) -> None:
    from helpers.registry import DOCKER_CONFIG, DOCKER_MANIFEST, free_port

    blob = gzip.compress(fileserver["foreign"], mtime=0)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    diff = "sha256:" + hashlib.sha256(fileserver["foreign"]).hexdigest()
    foreign_type = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    ok = {"mediaType": foreign_type, "digest": digest, "size": len(blob),
          "urls": [f"http://{fileserver['host']}/foreign.tar.gz"]}
    _put_manifest_with(plain, "team/foreign", [ok], [diff], DOCKER_MANIFEST, DOCKER_CONFIG)
    r = daemon.docker("pull", f"{plain.host}/team/foreign:v1")
    assert r.returncode == 0, r.stderr
    other = files_layer({"never.txt": b"never fetched"})  # a layer this daemon does not have yet
    oblob = gzip.compress(other, mtime=0)
    digest = "sha256:" + hashlib.sha256(oblob).hexdigest()
    dead = {"mediaType": foreign_type, "digest": digest, "size": len(oblob),
            "urls": [f"http://127.0.0.1:{free_port()}/foreign.tar.gz"]}
    _put_manifest_with(plain, "team/foreign-dead", [dead], ["sha256:" + hashlib.sha256(other).hexdigest()],
                       DOCKER_MANIFEST, DOCKER_CONFIG)
    st, _, body = daemon.api("POST", f"/images/create?fromImage={plain.host}/team/foreign-dead&tag=v1")
    text = body.decode()
    assert f"failed to fetch foreign layer {digest} from any of its URLs" in text and "connection refused" in text


def test_zstd_layers_are_accepted(daemon: TestDaemon, plain: Registry) -> None:
    import zstandard

    tar = files_layer({"z.txt": b"zstd layer\n"})
    blob = zstandard.ZstdCompressor().compress(tar)
    digest = plain.put_blob("team/zstd", blob)
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digest, "size": len(blob)}
    _put_manifest_with(plain, "team/zstd", [layer], ["sha256:" + hashlib.sha256(tar).hexdigest()],
                       "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json")
    st, _, body = daemon.api("POST", f"/images/create?fromImage={plain.host}/team/zstd&tag=v1")
    assert st == 200 and b"Status: Downloaded newer image" in body, body
