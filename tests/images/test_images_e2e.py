"""Images end to end through the API: the docker CLI, docker-py and our CLI against one daemon."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from typing import Any

import pytest

from helpers.daemon import DOCKYARD, TestDaemon


def cli_bytes(daemon: TestDaemon, *args: str, data: bytes) -> subprocess.CompletedProcess[str]:
    """Our CLI with binary stdin (an archive piped in)."""
    res = subprocess.run([DOCKYARD, *args], input=data, capture_output=True, env=daemon.env, timeout=120)
    return subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode(), res.stderr.decode())


def ok(res: Any) -> str:
    assert res.returncode == 0, f"rc={res.returncode}\nstdout={res.stdout}\nstderr={res.stderr}"
    return str(res.stdout)


def exit_code(daemon: TestDaemon, image: str, script: str) -> int:
    """Run ``sh -c script`` in a fresh container of ``image`` and return its exit status."""
    client = daemon.client()
    c = client.containers.create(image, ["sh", "-c", script])
    try:
        c.start()
        return int(c.wait(timeout=60)["StatusCode"])
    finally:
        c.remove(force=True)
        client.close()


def export_names(daemon: TestDaemon, image: str) -> dict[str, tarfile.TarInfo]:
    """The filesystem a container of ``image`` sees, via a created (never started) container's export."""
    client = daemon.client()
    c = client.containers.create(image, ["true"])
    try:
        data = b"".join(c.export())
    finally:
        c.remove(force=True)
        client.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def layer_tar(files: dict[str, bytes | None], dirs: tuple[str, ...] = ()) -> bytes:
    """A layer: files (None = a docker whiteout entry with that name) and directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            payload = data or b""
            ti.size = len(payload)
            tf.addfile(ti, io.BytesIO(payload))
    return buf.getvalue()


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of regular files, in the order given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def legacy_archive(layers: list[bytes], tag: str, cmd: list[str]) -> bytes:
    """An old-style docker-archive (``<id>/layer.tar``, ``<config>.json``, manifest.json)."""
    import hashlib

    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
                         "created": "2024-01-01T00:00:00Z", "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                                     for i in range(len(layers))]}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    paths = [f"{i:04d}{diff_ids[i][7:20]}/layer.tar" for i in range(len(layers))]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": paths}]).encode()
    return tar_of([*zip(paths, layers, strict=True), (cfg_name, config), ("manifest.json", manifest)])


def busybox_export(daemon: TestDaemon, image: str) -> bytes:
    client = daemon.client()
    c = client.containers.create(image, ["true"])
    try:
        return b"".join(c.export())
    finally:
        c.remove(force=True)
        client.close()


# --------------------------------------------------------------------------------------------- tests


def test_inspect_and_list_shapes(daemon: TestDaemon, busybox_image: str) -> None:
    status, info = daemon.api_json("GET", "/images/busybox/json")
    assert status == 200
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Id"].startswith("sha256:") and len(info["Id"]) == 71
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert ("VirtualSize" in info) == (daemon.api_version < "1.44")  # gone since API 1.44
    out = ok(daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"))
    assert f"busybox:latest {info['Id'][7:19]}" in out
    assert ok(daemon.docker("image", "inspect", "-f", "{{.Id}}", "busybox")).strip() == info["Id"]
    status, missing = daemon.api_json("GET", "/images/nosuchimage/json")
    assert status == 404 and missing["message"] == (  # dockerd 20.10 says it twice
        "no such image: nosuchimage: No such image: nosuchimage:latest" if daemon.reference
        else "No such image: nosuchimage:latest")
    res = daemon.docker("tag", "busybox", "Bad/Name")
    assert res.returncode != 0 and "must be lowercase" in res.stderr


def test_import_then_run(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> None:
    base = busybox_export(daemon, busybox_image)
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(base)) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        marker = tarfile.TarInfo("etc/marker")
        marker.size = 6
        dst.addfile(marker, io.BytesIO(b"marked"))
    path = os.path.join(str(tmp_path), "rootfs.tar")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    image_id = ok(daemon.docker("import", "-c", 'CMD ["sh"]', "-c", "ENV MARK=yes", "-m", "hello", path,
                                "imported:v1")).strip()
    assert image_id.startswith("sha256:")
    status, info = daemon.api_json("GET", "/images/imported:v1/json")
    assert info["Config"]["Env"][-1] == "MARK=yes" and info["Comment"] == "hello"
    hist = daemon.docker("history", "--no-trunc", "--format", "{{.ID}} {{.Comment}}", "imported:v1")
    assert ok(hist).strip() == f"{image_id} hello"
    assert exit_code(daemon, "imported:v1", 'test "$(cat /etc/marker)" = marked && test "$MARK" = yes') == 0
    ok(daemon.docker("rmi", "imported:v1"))


def test_commit_shows_the_change(daemon: TestDaemon, busybox_image: str) -> None:
    client = daemon.client()
    c = client.containers.create(busybox_image, ["sh", "-c", "echo new > /new && rm /etc/group"], name="tocommit")
    try:
        c.start()
        assert c.wait(timeout=60)["StatusCode"] == 0
        out = ok(daemon.docker("commit", "-m", "a change", "-a", "me", "-c", "ENV COMMITTED=1", "tocommit",
                               "committed:v1"))
        new_id = out.strip()
        status, info = daemon.api_json("GET", "/images/committed:v1/json")
        assert info["Id"] == new_id and info["Author"] == "me" and info["Comment"] == "a change"
        assert len(info["RootFS"]["Layers"]) == 2
        assert "COMMITTED=1" in info["Config"]["Env"]
        files = export_names(daemon, "committed:v1")
        assert "new" in files and "etc/group" not in files and "etc/passwd" in files
        assert exit_code(daemon, "committed:v1", 'test "$(cat /new)" = new && ! test -e /etc/group '
                                                 '&& test "$COMMITTED" = 1') == 0
        hist = ok(daemon.docker("history", "--format", "{{.CreatedBy}}|{{.Comment}}", "committed:v1"))
        assert hist.splitlines()[0].startswith("sh -c echo new") and hist.splitlines()[0].endswith("|a change")
    finally:
        c.remove(force=True)
        client.close()
        daemon.docker("rmi", "committed:v1")


@pytest.mark.dockyard_only("docker 25+ saves an OCI layout (index.json) beside manifest.json; dockerd 20.10 does not")
def test_save_rmi_load_round_trip(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> None:
    ok(daemon.docker("tag", "busybox", "localhost:5000/team/bb:1.0"))
    before = daemon.api_json("GET", "/images/busybox/json")[1]
    path = os.path.join(str(tmp_path), "saved.tar")
    ok(daemon.docker("save", "-o", path, "busybox", "localhost:5000/team/bb:1.0"))
    with tarfile.open(path) as tf:
        names = set(tf.getnames())
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    assert manifest[0]["RepoTags"] == ["busybox:latest", "localhost:5000/team/bb:1.0"]
    assert manifest[0]["Config"] == f"blobs/sha256/{before['Id'][7:]}"
    assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == {
        "docker.io/library/busybox:latest", "localhost:5000/team/bb:1.0"}
    ok(daemon.docker("rmi", "localhost:5000/team/bb:1.0"))
    # the save is the cache other modules load busybox from: put busybox back whatever happens
    try:
        ok(daemon.docker("rmi", "busybox"))
        assert daemon.api("GET", "/images/busybox/json")[0] == 404
    finally:
        out = ok(daemon.docker("load", "-i", path))
    assert "Loaded image: busybox:latest" in out and "Loaded image: localhost:5000/team/bb:1.0" in out
    after = daemon.api_json("GET", "/images/busybox/json")[1]
    assert after["Id"] == before["Id"] and after["RootFS"] == before["RootFS"]
    assert daemon.api_json("GET", "/images/localhost:5000/team/bb:1.0/json")[1]["Id"] == before["Id"]
    ok(daemon.docker("rmi", "localhost:5000/team/bb:1.0"))


def test_save_load_with_docker_py(daemon: TestDaemon, busybox_image: str) -> None:
    client = daemon.client()
    try:
        img = client.images.get("busybox")
        img.tag("pysaved", "x")
        data = b"".join(client.images.get("pysaved:x").save(named="pysaved:x"))
        client.images.remove("pysaved:x")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [img.id]
        assert "pysaved:x" in client.images.get(img.id).tags
        assert any("busybox:latest" in i.tags for i in client.images.list())
        assert client.images.get("pysaved:x").history()[0]["Id"] == img.id
        client.images.remove("pysaved:x")
    finally:
        client.close()


def test_export_then_import(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> None:
    ok(daemon.docker("create", "--name", "toexport", busybox_image, "true"))
    path = os.path.join(str(tmp_path), "exported.tar")
    try:
        ok(daemon.docker("export", "-o", path, "toexport"))
        with tarfile.open(path) as tf:
            assert "bin/busybox" in tf.getnames()
        ok(daemon.docker("import", path, "reimported"))
        files = export_names(daemon, "reimported")
        assert files["bin/busybox"].size > 100_000 and files["bin/sh"].issym()
    finally:
        daemon.docker("rm", "-f", "toexport")
        daemon.docker("rmi", "reimported")
    res = daemon.docker("export", "toexport")
    assert res.returncode != 0


def test_rmi_refusals(daemon: TestDaemon, busybox_image: str) -> None:
    ok(daemon.docker("tag", "busybox", "solo:1"))
    image_id = daemon.api_json("GET", "/images/solo:1/json")[1]["Id"]
    ok(daemon.docker("tag", "busybox", "other:1"))
    ok(daemon.docker("create", "--name", "user1", "solo:1", "true"))
    cid = daemon.api_json("GET", "/containers/user1/json")[1]["Id"]
    try:
        res = daemon.docker("rmi", image_id[7:19])
        assert res.returncode == 1
        assert res.stderr.strip() == (f"Error response from daemon: conflict: unable to delete {image_id[7:19]} "
                                      "(must be forced) - image is referenced in multiple repositories")
        ok(daemon.docker("rmi", "other:1"))
        # a single-reference image used by a container: untag by name refused…
        res = daemon.docker("rmi", "solo:1")
        # …but busybox:latest still names it too, so docker untags; drop that name first to see the refusal
        assert res.returncode == 0
        ok(daemon.docker("tag", image_id, "solo:1"))
        status, body = daemon.api_json("DELETE", "/images/busybox:latest")
        assert status == 200 and body == [{"Untagged": "busybox:latest"}]
        status, body = daemon.api_json("DELETE", "/images/solo:1")
        assert status == 409
        assert body["message"] == (f'conflict: unable to remove repository reference "solo:1" (must force) - '
                                   f"container {cid[:12]} is using its referenced image {image_id[7:19]}")
        status, body = daemon.api_json("DELETE", f"/images/{image_id[7:19]}")
        assert status == 409
        assert body["message"] == (f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is "
                                   f"being used by stopped container {cid[:12]}")
    finally:
        daemon.docker("rm", "-f", "user1")
        daemon.docker("tag", image_id, "busybox:latest")
        daemon.docker("rmi", "solo:1")
    assert daemon.api_json("GET", "/images/busybox/json")[1]["Id"] == image_id


def test_dangling_and_prune(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> None:
    first = ok(cli_bytes(daemon, "import", "-", "dangle:1", data=layer_tar({"a": b"1"}))).strip()
    second = ok(cli_bytes(daemon, "import", "-", "dangle:1", data=layer_tar({"a": b"2"}))).strip()
    assert first != second
    dangling = ok(daemon.docker("images", "-q", "--no-trunc", "-f", "dangling=true")).split()
    assert first in dangling and second not in dangling
    table = ok(daemon.docker("images", "-f", "dangling=true"))
    assert "<none>" in table
    out = ok(daemon.docker("image", "prune", "-f"))
    assert f"deleted: {first}" in out and "Total reclaimed space:" in out
    assert daemon.api("GET", f"/images/{first}/json")[0] == 404
    assert daemon.api("GET", "/images/dangle:1/json")[0] == 200
    ok(daemon.docker("rmi", "dangle:1"))
    assert daemon.api("GET", "/images/busybox/json")[0] == 200


def test_hundred_layers_and_whiteouts(daemon: TestDaemon, busybox_image: str) -> None:
    layers = [busybox_export(daemon, busybox_image)]
    layers.append(layer_tar({"opq/lower": b"l", "etc/doomed": b"d"}, dirs=("opq",)))
    for i in range(97):
        layers.append(layer_tar({f"layers/f{i}": str(i).encode()}, dirs=("layers",)))
    layers.append(layer_tar({"etc/.wh.doomed": None, "opq/.wh..wh..opq": None, "opq/upper": b"u",
                             "layers/.wh.f5": None}, dirs=("etc", "opq", "layers")))
    assert len(layers) == 100
    status, _, body = daemon.api("POST", "/images/load", legacy_archive(layers, "deep:100", ["sh"]),
                                 headers={"Content-Type": "application/x-tar"}, timeout=300)
    assert status == 200 and b"Loaded image: deep:100" in body, body
    info = daemon.api_json("GET", "/images/deep:100/json")[1]
    assert len(info["RootFS"]["Layers"]) == 100
    files = export_names(daemon, "deep:100")
    assert "layers/f0" in files and "layers/f96" in files and "layers/f5" not in files
    assert "etc/doomed" not in files and "etc/passwd" in files
    assert "opq/upper" in files and "opq/lower" not in files
    assert exit_code(daemon, "deep:100", "test -f /layers/f96 && ! test -e /layers/f5 && "
                                         "test \"$(ls /opq)\" = upper") == 0
    hist = ok(daemon.docker("history", "-q", "deep:100")).split()
    assert len(hist) == 100 and hist[0] == info["Id"][7:19] and hist[1] == "<missing>"
    ok(daemon.docker("rmi", "deep:100"))


@pytest.mark.dockyard_only("dockyard's layer store (data-root/layers) is checked to be unchanged")
@pytest.mark.parametrize("entry", ["../evil", "/abs-evil"])
def test_malicious_import_refused(daemon: TestDaemon, busybox_image: str, entry: str) -> None:
    layers_dir = os.path.join(daemon.data_root, "layers")
    before = set(os.listdir(layers_dir))
    evil = tar_of([("ok", b"x"), (entry, b"evil")])
    res = cli_bytes(daemon, "import", "-", "evil:1", data=evil)
    assert res.returncode == 1 and "refusing archive entry" in res.stderr
    status, _, body = daemon.api("POST", "/images/create?fromSrc=-&repo=evil&tag=1", evil)
    assert status == 400 and b"refusing archive entry" in body
    assert set(os.listdir(layers_dir)) == before
    assert not os.path.exists(os.path.join(daemon.data_root, "evil"))
    assert not os.path.exists("/abs-evil")
    assert daemon.api("GET", "/images/evil:1/json")[0] == 404


def test_our_cli(daemon: TestDaemon, busybox_image: str) -> None:
    out = ok(daemon.cli("images"))
    assert out.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in out.splitlines()[1:])
    ok(daemon.cli("tag", "busybox", "cli/tagged:t1"))
    assert "cli/tagged:t1" in ok(daemon.cli("image", "inspect", "-f", "{{json .RepoTags}}", "cli/tagged:t1"))
    assert ok(daemon.cli("rmi", "cli/tagged:t1")).strip() == "Untagged: cli/tagged:t1"
    res = daemon.cli("rmi", "nosuch:image")
    assert res.returncode == 1 and res.stderr.strip() == "Error response from daemon: No such image: nosuch:image"
    hist = ok(daemon.cli("history", "busybox")).splitlines()
    assert hist[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    res = daemon.docker("images", "--digests")
    assert "DIGEST" in ok(res).splitlines()[0]


def test_list_filters_and_events(daemon: TestDaemon, busybox_image: str) -> None:
    since = time.time() - 1
    layer = layer_tar({"x": b"1"})
    ok(cli_bytes(daemon, "import", "-c", "LABEL tier=gold", "-", "filt/one:a", data=layer))
    ok(cli_bytes(daemon, "import", "-c", "LABEL tier=lead", "-", "filt/two:b", data=layer))
    try:
        def names(*flags: str) -> set[str]:
            return set(ok(daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}", *flags)).split())

        assert names("-f", "reference=filt/*") == {"filt/one:a", "filt/two:b"}
        assert names("-f", "reference=filt/one") == {"filt/one:a"}
        assert names("-f", "label=tier=gold") == {"filt/one:a"}
        assert names("-f", "label=tier") == {"filt/one:a", "filt/two:b"}
        assert "busybox:latest" not in names("-f", "since=busybox")
        res = daemon.docker("images", "-f", "bogus=1")
        assert res.returncode == 1 and daemon.wording("invalid filter 'bogus'") in res.stderr
        hist = ok(daemon.docker("history", "-H=false", "--format", "{{.Size}}", "filt/one:a")).split()
        assert hist == [str(len(b"1"))]
        client = daemon.client()
        try:
            events = list(client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                        filters={"type": "image"}))
        finally:
            client.close()
        assert "import" in {e["Action"] for e in events}
    finally:
        daemon.docker("rmi", "filt/one:a", "filt/two:b")


def test_save_unknown_image_fails_before_streaming(daemon: TestDaemon, busybox_image: str,
                                                   tmp_path: Any) -> None:
    # dockerd 20.10 words it "reference does not exist"; newer docker names the image
    missing = "reference does not exist" if daemon.reference else "No such image: nosuch:tag"
    status, body = daemon.api_json("GET", "/images/get?names=busybox&names=nosuch:tag")
    assert status == 404 and body["message"] == missing
    res = daemon.docker("save", "-o", os.path.join(str(tmp_path), "x.tar"), "nosuch:tag")
    assert res.returncode == 1 and missing in res.stderr


@pytest.mark.dockyard_only("image bootstrap is dockyard's own endpoint")
def test_bootstrap_busybox_with_our_cli(daemon: TestDaemon) -> None:
    res = daemon.cli("image", "bootstrap", "busybox:boot")
    assert res.returncode == 0, res.stderr
    assert "Tagged busybox:boot" in res.stdout
    try:
        assert exit_code(daemon, "busybox:boot", "grep -q '^nobody:' /etc/passwd && test -d /tmp "
                                                 "&& test -L /bin/sh && wc -l /etc/group") == 0
    finally:
        ok(daemon.docker("rmi", "busybox:boot"))


def oci_layout(layers: list[bytes], name: str, codec: str) -> bytes:
    """A plain OCI image layout (no manifest.json) with compressed layers, as other tools write it."""
    import gzip
    import hashlib

    import zstandard

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    blobs: dict[str, bytes] = {}
    descs = []
    for layer in layers:
        packed = gzip.compress(layer) if codec == "gzip" else zstandard.ZstdCompressor().compress(layer)
        blobs[digest(packed)] = packed
        mt = "application/vnd.oci.image.layer.v1.tar+" + ("gzip" if codec == "gzip" else "zstd")
        descs.append({"mediaType": mt, "digest": digest(packed), "size": len(packed)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [digest(lyr) for lyr in layers]}}).encode()
    blobs[digest(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest(config), "size": len(config)},
                           "layers": descs}).encode()
    blobs[digest(manifest)] = manifest
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": digest(manifest), "size": len(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": name}}]}
    return tar_of([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", json.dumps(index).encode()),
                   *((f"blobs/sha256/{d[7:]}", data) for d, data in blobs.items())])


@pytest.mark.dockyard_only("loading an OCI image layout is docker 25's; dockerd 20.10 reads only docker-save archives")
@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_load_oci_layout_with_compressed_layers(daemon: TestDaemon, busybox_image: str, codec: str) -> None:
    layers = [busybox_export(daemon, busybox_image), layer_tar({"etc/oci": codec.encode()})]
    res = cli_bytes(daemon, "load", data=oci_layout(layers, f"ocitest/{codec}:1", codec))
    assert ok(res).strip() == f"Loaded image: ocitest/{codec}:1"
    files = export_names(daemon, f"ocitest/{codec}:1")
    assert "etc/oci" in files and "bin/busybox" in files
    assert exit_code(daemon, f"ocitest/{codec}:1", f'test "$(cat /etc/oci)" = {codec}') == 0
    ok(daemon.docker("rmi", f"ocitest/{codec}:1"))


@pytest.mark.dockyard_only("docker 25+ saves an OCI layout (blobs/sha256, index.json); dockerd 20.10 writes the legacy layout only")
def test_save_load_images_sharing_layers(daemon: TestDaemon, busybox_image: str, tmp_path: Any) -> None:
    """Two images over one base: the archive holds the base once; loading restores both and the tags."""
    ok(cli_bytes(daemon, "load", data=legacy_archive([busybox_export(daemon, busybox_image),
                                                      layer_tar({"one": b"1"})], "shared:one", ["sh"])))
    ok(cli_bytes(daemon, "load", data=legacy_archive([busybox_export(daemon, busybox_image),
                                                      layer_tar({"two": b"2"})], "shared:two", ["sh"])))
    ids = {t: daemon.api_json("GET", f"/images/shared:{t}/json")[1] for t in ("one", "two")}
    assert ids["one"]["RootFS"]["Layers"][0] == ids["two"]["RootFS"]["Layers"][0]
    path = os.path.join(str(tmp_path), "shared.tar")
    ok(daemon.docker("save", "-o", path, "shared:one", "shared:two"))
    with tarfile.open(path) as tf:
        blobs = [n for n in tf.getnames() if n.startswith("blobs/sha256/") and len(n) > 20]
    assert len(blobs) == len(set(blobs)) == 3 + 2 + 2  # 3 layers, 2 configs, 2 manifests
    ok(daemon.docker("rmi", "shared:one", "shared:two"))
    out = ok(daemon.docker("load", "-i", path))
    assert out.splitlines() == ["Loaded image: shared:one", "Loaded image: shared:two"]
    for t in ("one", "two"):
        assert daemon.api_json("GET", f"/images/shared:{t}/json")[1]["Id"] == ids[t]["Id"]
    assert "two" in export_names(daemon, "shared:two")
    ok(daemon.docker("rmi", "shared:one", "shared:two"))


def test_commit_running_container_pauses_and_resumes(daemon: TestDaemon, busybox_image: str) -> None:
    from helpers.daemon import wait_for

    client = daemon.client()
    c = client.containers.run(busybox_image, ["sh", "-c", "echo r > /running; sleep 60"], detach=True)
    try:
        wait_for(lambda: any(ch["Path"] == "/running" for ch in (c.diff() or [])), timeout=20)
        image = c.commit("livecommit", "1", message="live")
        c.reload()
        assert c.attrs["State"]["Running"] and not c.attrs["State"]["Paused"]
        assert "running" in export_names(daemon, "livecommit:1")
        assert image.attrs["Comment"] == "live"
    finally:
        c.remove(force=True)
        client.close()
        daemon.docker("rmi", "livecommit:1")


@pytest.mark.dockyard_only("dockyard's layer store (data-root/layers, blobs) is inspected")
def test_forced_rmi_keeps_layers_until_the_container_goes(daemon: TestDaemon, busybox_image: str) -> None:
    layers_dir = os.path.join(daemon.data_root, "layers")
    blobs_dir = os.path.join(daemon.data_root, "blobs", "sha256")
    before_layers, before_blobs = set(os.listdir(layers_dir)), set(os.listdir(blobs_dir))
    base = busybox_export(daemon, busybox_image)
    ok(cli_bytes(daemon, "load", data=legacy_archive([base, layer_tar({"gc": b"me"})], "gc:1", ["sh"])))
    image_id = daemon.api_json("GET", "/images/gc:1/json")[1]["Id"]
    ok(daemon.docker("create", "--name", "gcuser", "gc:1", "sh", "-c", "test -f /gc"))
    try:
        res = daemon.docker("rmi", "-f", "gc:1")
        assert ok(res).splitlines() == ["Untagged: gc:1", f"Deleted: {image_id}"]
        assert daemon.api("GET", f"/images/{image_id}/json")[0] == 404
        assert len(set(os.listdir(layers_dir)) - before_layers) == 2  # the exported base and "gc", still held
        client = daemon.client()
        try:
            c = client.containers.get("gcuser")
            c.start()
            assert c.wait(timeout=60)["StatusCode"] == 0
        finally:
            client.close()
    finally:
        daemon.docker("rm", "-f", "gcuser")
    assert set(os.listdir(layers_dir)) == before_layers
    assert set(os.listdir(blobs_dir)) == before_blobs


@pytest.mark.dockyard_only("dockyard's layer store is inspected and its load progress format (dockerd 20.10 sends no per-layer progress here)")
def test_load_streams_progress_and_reports_bad_layers_in_band(daemon: TestDaemon, busybox_image: str) -> None:
    good = legacy_archive([layer_tar({"fine": b"ok"})], "progress:1", ["sh"])
    status, headers, body = daemon.api("POST", "/images/load", good)
    messages = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert status == 200 and headers["content-type"] == "application/json"
    assert [m["status"] for m in messages if "progressDetail" in m] == ["Loading layer", "Loading layer"]
    assert messages[-1] == {"stream": "Loaded image: progress:1\n"}
    ok(daemon.docker("rmi", "progress:1"))

    layers_dir = os.path.join(daemon.data_root, "layers")
    before = set(os.listdir(layers_dir))
    evil = legacy_archive([layer_tar({"ok": b"1", "../../escaped": b"x"})], "evil:2", ["sh"])
    status, _, body = daemon.api("POST", "/images/load?quiet=1", evil)
    last = json.loads(body.splitlines()[-1])
    assert status == 200 and "refusing archive entry that escapes the root" in last["error"]
    res = cli_bytes(daemon, "load", data=evil)
    assert res.returncode == 1 and "refusing archive entry" in res.stderr
    assert set(os.listdir(layers_dir)) == before
    assert not os.path.exists(os.path.join(daemon.data_root, "escaped"))
    assert daemon.api("GET", "/images/evil:2/json")[0] == 404
