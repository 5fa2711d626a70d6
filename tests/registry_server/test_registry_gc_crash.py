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


def test_pushes_racing_gc_without_grace_leave_a_whole_store(registry: RegistryProcess) -> None:
    """gc with no grace at all, in a loop, beside pushers (fresh blobs, blobs another push already stored that
    they HEAD and skip, cross-repository mounts) and blobs nobody references. The store lock alone keeps the
    store whole: no manifest is ever stored whose blobs are gone, a push that lost a blob to gc is refused
    MANIFEST_BLOB_UNKNOWN and stores nothing, and its retry completes."""
    from concurrent.futures import ThreadPoolExecutor

    from regserver import image_manifest

    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    shared = os.urandom(3000)
    base = registry.push_image("race/base", "v1", layer=shared, config=config)
    assert base
    stop = threading.Event()
    runs: list[subprocess.CompletedProcess[str]] = []
    junk: list[str] = []
    refused: list[str] = []

    def collector() -> None:
        while not stop.is_set():
            runs.append(gc(registry.root, "--grace", "0s"))

    def push(repo: str, tag: str, layer: bytes) -> tuple[int, str]:
        """One push as a client makes it: HEAD, then upload or mount, then the manifest."""
        for data in (config, layer):
            d = sha(data)
            if registry.request("HEAD", f"/v2/{repo}/blobs/{d}").status == 200:
                continue
            m = registry.request("POST", f"/v2/{repo}/blobs/uploads/?mount={d}&from=race/base")
            if m.status != 201:
                registry.request("DELETE", m.headers.get("location", "/x"))
                registry.push_blob(repo, data)
        _, a = registry.push_manifest(repo, tag, image_manifest(sha(config), len(config), sha(layer), len(layer)))
        return a.status, a.code() if a.status != 201 else ""

    def pusher(job: tuple[int, int]) -> list[tuple[str, str, bytes, int, str]]:
        k, rnd = job
        done = []
        for i in range(8):
            repo, tag = f"race/p{k}", f"r{rnd}t{i}"
            layer = shared if i % 3 == 0 else os.urandom(1500 + i)
            junk.append(registry.push_blob(f"race/junk{k}", os.urandom(700)))  # garbage for gc to sweep meanwhile
            status, code = push(repo, tag, layer)
            tries = 1
            while status != 201 and tries < 5:
                assert (status, code) == (400, "MANIFEST_BLOB_UNKNOWN"), (status, code)
                assert registry.request("GET", f"/v2/{repo}/manifests/{tag}").status == 404  # nothing stored
                refused.append(tag)
                status, code = push(repo, tag, layer)
                tries += 1
            done.append((repo, tag, layer, status, code))
        return done

    for rnd in range(3):
        stop.clear()
        t = threading.Thread(target=collector)
        t.start()
        try:
            with ThreadPoolExecutor(4) as pool:
                results = [r for rs in pool.map(pusher, [(k, rnd) for k in range(4)]) for r in rs]
        finally:
            stop.set()
            t.join()
        assert runs and all(r.returncode == 0 for r in runs), [r.stderr for r in runs if r.returncode]
        for repo, tag, _layer, status, _ in results:
            assert status == 201, (repo, tag)
            man = registry.request("GET", f"/v2/{repo}/manifests/{tag}")
            assert man.status == 200
            for desc in [man.json()["config"], *man.json()["layers"]]:
                got = registry.request("GET", f"/v2/{repo}/blobs/{desc['digest']}")
                assert got.status == 200 and sha(got.body) == desc["digest"]
        assert blobs_consistent(registry.root) == []
    # the collector did sweep: the unreferenced blobs are gone once it runs alone
    r = gc(registry.root, "--grace", "0s")
    assert r.returncode == 0
    assert len(runs) > 3 and junk
    assert blob_names(registry.root).isdisjoint(d[7:] for d in junk)
    print(f"{len(runs)} gc runs beside the pushes, {len(refused)} manifest puts refused then retried")


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
