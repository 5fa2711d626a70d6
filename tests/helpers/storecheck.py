"""The store consistency check a crash leaves to judge: nothing half-made in a data root (read straight from its
files and its state.db, read-only), for tests/engine/test_crash_points.py, the distribution and build crash tests
and bench/crash_bench.py."""

from __future__ import annotations

import os
import re
import sqlite3


def store_problems(root: str, running: set[str]) -> list[str]:
    """What the stores of the daemon on data root ``root`` hold half-made; ``running``: the IDs of the containers
    the API says run (their state dirs must hold no exec shim file once its exec was followed)."""
    out: list[str] = []
    blob_dir = os.path.join(root, "blobs", "sha256")
    layer_dir = os.path.join(root, "layers")
    for where in (blob_dir, layer_dir):
        out += [f"temp file {where}/{n}" for n in os.listdir(where) if n.startswith(".tmp")]
    for where in ("tmp", "build/tmp", "build/running"):
        path = os.path.join(root, where)
        if os.path.isdir(path):
            out += [f"left in {where}: {n}" for n in os.listdir(path)]
    db = sqlite3.connect(f"file:{os.path.join(root, 'state.db')}?mode=ro", uri=True, timeout=30)
    try:
        images = {r[0] for r in db.execute("SELECT id FROM images")}
        layers = {r[0]: (r[1], r[2]) for r in db.execute("SELECT chain_id, diff_id, link FROM layers")}
        refs = list(db.execute("SELECT owner, chain_id FROM layer_refs"))
        containers = {r[0] for r in db.execute("SELECT id FROM containers")}
    finally:
        db.close()
    blobs = {"sha256:" + n for n in os.listdir(blob_dir) if not n.startswith(".")}
    known = images | {diff for diff, _link in layers.values()}
    out += [f"orphan blob {b[:19]}" for b in sorted(blobs - known)]
    out += [f"image {i[:19]} has no config blob" for i in sorted(images - blobs)]
    for chain, (diff, link) in layers.items():
        if not os.path.isdir(os.path.join(layer_dir, chain.split(":", 1)[1], "diff")):
            out.append(f"layer {chain[:19]} has no directory")
        if not os.path.islink(os.path.join(layer_dir, "l", link)):
            out.append(f"layer {chain[:19]} has no link")
        kept_as_split = os.path.exists(os.path.join(layer_dir, chain.split(":", 1)[1], "tar-split.zst"))
        if diff not in blobs and not kept_as_split:
            out.append(f"layer {chain[:19]} has neither its tar blob nor its tar-split")
    dirs = {"sha256:" + n for n in os.listdir(layer_dir) if n not in ("l", "empty") and not n.startswith(".")}
    out += [f"layer directory {c[:19]} without a record" for c in sorted(dirs - set(layers))]
    for owner, chain in refs:
        kind, _, ident = owner.partition(":")
        if chain not in layers:
            out.append(f"{owner[:24]} holds a missing layer {chain[:19]}")
        if kind == "tmp" or (kind == "image" and ident not in images) or \
                (kind == "snap" and ident not in containers):
            out.append(f"layer {chain[:19]} held by {owner[:24]}, which is gone")
    out += [f"layer {c[:19]} held by nothing" for c in sorted(set(layers) - {c for _o, c in refs})]
    snaps = os.path.join(root, "snapshots")
    if os.path.isdir(snaps):
        out += [f"snapshot {n[:12]} without a container" for n in os.listdir(snaps)
                if not n.startswith(".") and n not in containers]
    exec_file = re.compile(r"^exec-[0-9a-f]{12}\.(sock|json)$")
    for cid in running:
        state = os.path.join(root, "containers", cid)
        if os.path.isdir(state):
            out += [f"exec file {n} left in {cid[:12]}" for n in os.listdir(state) if exec_file.match(n)]
    return out
