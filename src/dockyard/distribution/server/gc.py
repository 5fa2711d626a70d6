"""``dockyard registry gc``: mark every blob a manifest of any repository names, sweep the rest.

Safe beside a running server by construction, not by timing: the whole mark and sweep holds ``gc.lock``
exclusively, and the server holds it shared around every step that makes a blob count (committing an upload,
a cross-repository mount, the HEAD a pushing client makes before it skips an upload) and around a manifest put
from its check that every blob it names is there to the manifest's write. So a manifest is never stored whose
blobs gc removed: a push whose blobs went before its manifest came is refused ``MANIFEST_BLOB_UNKNOWN``, stores
nothing, and its retry uploads them again. The grace (blobs written or used that recently are kept even if no
manifest names them yet) only spares such a push the retry; the store's consistency does not rest on it.
"""

from __future__ import annotations

import os
import time
from typing import TextIO

from .store import RegistryStore, manifest_references


def collect(store: RegistryStore, dry_run: bool, grace: float, out: TextIO) -> tuple[int, int]:
    """Returns (blobs marked, blobs removed or eligible)."""
    with store.gc_lock(exclusive=True):
        cutoff = time.time() - grace
        marked: set[str] = set()
        links: dict[str, list[str]] = {}  # blob hex -> its repository link files
        for repo in store.repositories() + _link_only_repos(store):
            rdir = os.path.join(store.repos_dir, repo)
            revs = os.path.join(rdir, "_manifests", "revisions")
            for hexd in sorted(_ls(revs)):
                digest = "sha256:" + hexd
                out.write(f"{repo}: marking manifest {digest}\n")
                marked.add(hexd)
                try:
                    with open(os.path.join(store.blobs.dir, hexd), "rb") as f:
                        body = f.read()
                except FileNotFoundError:
                    continue
                for ref in manifest_references(body):
                    if ref.startswith("sha256:"):
                        if ref[7:] not in marked:
                            out.write(f"{repo}: marking blob {ref}\n")
                        marked.add(ref[7:])
            layers = os.path.join(rdir, "_layers")
            for hexd in _ls(layers):
                links.setdefault(hexd, []).append(os.path.join(layers, hexd))
        removed = 0
        for hexd in sorted(_ls(store.blobs.dir)):
            if hexd.startswith(".") or hexd in marked:
                continue
            path = os.path.join(store.blobs.dir, hexd)
            try:
                newest = max([os.stat(path).st_mtime] + [os.stat(p).st_mtime for p in links.get(hexd, [])
                                                         if os.path.exists(p)])
            except FileNotFoundError:
                continue
            if newest > cutoff:
                continue
            out.write(f"blob eligible for deletion: sha256:{hexd}\n")
            removed += 1
            if not dry_run:
                for p in links.get(hexd, []):
                    _unlink(p)
                _unlink(path)
        out.write(f"\n{len(marked)} blobs marked, {removed} blobs eligible for deletion"
                  f"{'' if dry_run else ' and deleted'}\n")
        return len(marked), removed


def _link_only_repos(store: RegistryStore) -> list[str]:
    """Repositories with uploaded blobs but no manifest yet (their links must be seen too)."""
    out = []
    for dirpath, dirnames, _ in os.walk(store.repos_dir):
        if "_layers" in dirnames and "_manifests" not in dirnames:
            out.append(os.path.relpath(dirpath, store.repos_dir))
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
    return out


def _ls(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except FileNotFoundError:
        return []


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
