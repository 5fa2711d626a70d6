"""`dockyard registry gc` (dry run, real, beside a push in progress) and a `kill -9` of the server mid-push."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from regserver import DOCKYARD, RegistryProcess, blobs_consistent, make_oci_layout, sha, skopeo

Factory = Callable[..., RegistryProcess]


def gc(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKYARD, "registry", "gc", "--root", root, *args], capture_output=True, text=True,
                          timeout=60)


def blob_names(root: str) -> set[str]:
    return {n for n in os.listdir(os.path.join(root, "blobs", "sha256")) if not n.startswith(".")}


def test_gc_removes_only_unreferenced_blobs(registry: RegistryProcess) -> None:
    keep = registry.push_image("gc/keep", "v1", layer=b"kept layer")
    drop = registry.push_image("gc/drop", "v1", layer=b"dropped layer")
    assert registry.request("DELETE", f"/v2/gc/drop/manifests/{drop}").status == 202
    before = blob_names(registry.root)
    r = gc(registry.root, "--dry-run", "--grace", "0s")
    assert r.returncode == 0, r.stderr
    eligible = {line.split("sha256:")[1] for line in r.stdout.splitlines() if line.startswith("blob eligible")}
    assert eligible == {sha(b"dropped layer")[7:], drop[7:]}
    assert blob_names(registry.root) == before  # a dry run removes nothing
    r = gc(registry.root, "--grace", "0s")
    assert r.returncode == 0 and "2 blobs eligible for deletion and deleted" in r.stdout, r.stdout
    assert blob_names(registry.root) == before - eligible
    assert registry.request("GET", "/v2/gc/keep/manifests/v1").status == 200
    assert registry.request("GET", f"/v2/gc/keep/blobs/{sha(b'kept layer')}").body == b"kept layer"
    assert registry.request("GET", f"/v2/gc/drop/blobs/{sha(b'dropped layer')}").status == 404
    assert keep


def test_gc_spares_a_push_in_progress(registry: RegistryProcess) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(1000)
    cd, ld = registry.push_blob("gc/busy", config), registry.push_blob("gc/busy", layer)
    # the blobs are uploaded, the manifest is not yet: gc with the default grace keeps them
    r = gc(registry.root)
    assert r.returncode == 0 and "0 blobs eligible" in r.stdout, r.stdout
    r = gc(registry.root, "--dry-run", "--grace", "0s")  # without the grace they would go
    assert "2 blobs eligible" in r.stdout, r.stdout
    from regserver import image_manifest

    _, a = registry.push_manifest("gc/busy", "v1", image_manifest(cd, len(config), ld, len(layer)))
    assert a.status == 201
    # gc running while pushes go on: every push completes, every pushed image stays whole
    stop = threading.Event()
    runs: list[int] = []

    def collector() -> None:
        while not stop.is_set():
            runs.append(gc(registry.root).returncode)

    t = threading.Thread(target=collector)
    t.start()
    try:
        digests = [registry.push_image("gc/busy", f"t{i}", layer=os.urandom(2000)) for i in range(10)]
    finally:
        stop.set()
        t.join()
    assert runs and set(runs) == {0}
    for i, d in enumerate(digests):
        man = registry.request("GET", f"/v2/gc/busy/manifests/t{i}")
        assert man.status == 200 and man.headers["docker-content-digest"] == d
        for layer_desc in man.json()["layers"]:
            assert registry.request("HEAD", f"/v2/gc/busy/blobs/{layer_desc['digest']}").status == 200


def test_gc_bad_root() -> None:
    r = gc("/nonexistent/registry-root")
    assert r.returncode == 1 and "no such directory" in r.stderr


@pytest.mark.skipif(subprocess.run(["which", "skopeo"], capture_output=True).returncode != 0, reason="no skopeo")
def test_kill_9_mid_push_then_retry(registry_factory: Factory, work_dir: str) -> None:
    layout = os.path.join(work_dir, "big")
    make_oci_layout(layout, {"big.bin": os.urandom(96 << 20), "small.txt": b"hello\n"}, tag="big")
    reg = registry_factory()
    dest = f"docker://{reg.addr}/crash/big:1"
    p = subprocess.Popen(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", f"oci:{layout}:big", dest],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def partial_bytes() -> int:
        n = 0
        for d in (os.path.join(reg.root, "uploads"), os.path.join(reg.root, "blobs", "sha256")):
            for dirpath, _, files in os.walk(d):
                for f in files:
                    if dirpath != os.path.join(reg.root, "blobs", "sha256") or f.startswith("."):
                        try:
                            n += os.path.getsize(os.path.join(dirpath, f))
                        except FileNotFoundError:
                            pass
        return n

    deadline = time.monotonic() + 60
    while partial_bytes() < (8 << 20) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.01)
    assert p.poll() is None, "the push finished before it could be interrupted"
    assert reg.proc is not None
    os.killpg(reg.proc.pid, signal.SIGKILL)  # master and workers, mid-upload
    reg.proc.wait()
    reg.proc = None
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0
    # the store is consistent: every named blob is whole, no manifest was stored
    assert blobs_consistent(reg.root) == []
    assert reg.request is not None
    reg.start()
    assert reg.request("GET", "/v2/crash/big/manifests/1").status == 404
    # the temp files of the killed workers are gone at start-up
    assert [n for n in os.listdir(os.path.join(reg.root, "blobs", "sha256")) if n.startswith(".tmp-")] == []
    r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:big", f"docker://{reg.addr}/crash/big:1")
    assert r.returncode == 0, r.stderr
    assert blobs_consistent(reg.root) == []
    out = os.path.join(work_dir, "back")
    r = skopeo("copy", "--src-tls-verify=false", f"docker://{reg.addr}/crash/big:1", f"oci:{out}:big")
    assert r.returncode == 0, r.stderr
    # skopeo compressed the layer on the way in; what comes back is the manifest the tag names
    served = reg.request("HEAD", "/v2/crash/big/manifests/1").headers["docker-content-digest"]
    with open(os.path.join(out, "index.json")) as f:
        import json

        assert json.load(f)["manifests"][0]["digest"] == served
