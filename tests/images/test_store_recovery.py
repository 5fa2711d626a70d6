"""The image store after a crash: staging dirs, half-written blobs and unheld layers are cleared."""

from __future__ import annotations

import io
import os
import tarfile

from dockyard.storage.db import StateDB
from helpers.doubles import image_service


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_restart_clears_crash_leftovers(tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "root")
    os.makedirs(root)
    db = StateDB(os.path.join(root, "state.db"))
    svc = image_service(db, root)
    kept = svc.import_tar(io.BytesIO(_tar("kept", b"1")), "kept", "1")
    # a crash mid-import: a layer registered and held only by the import's temporary holder
    orphan = svc.layers.register(io.BytesIO(_tar("orphan", b"2")), None, "tmp:crashed")
    os.makedirs(os.path.join(svc.tmp_dir, "load-dead", "blobs"))
    os.makedirs(os.path.join(svc.layers.dir, ".tmp-dead", "diff"))
    with open(os.path.join(svc.blobs.dir, ".tmp-1-dead"), "wb") as f:
        f.write(b"partial")
    db.close()

    db = StateDB(os.path.join(root, "state.db"))
    svc = image_service(db, root)
    assert os.listdir(svc.tmp_dir) == []
    assert not os.path.exists(os.path.join(svc.layers.dir, ".tmp-dead"))
    assert not os.path.exists(os.path.join(svc.blobs.dir, ".tmp-1-dead"))
    assert not svc.layers.exists(orphan.chain_id) and not svc.blobs.has(orphan.diff_id)
    img = svc.resolve("kept:1")
    assert img.id == kept.id and svc.layers.exists(img.chain_ids[0])
    db.close()
