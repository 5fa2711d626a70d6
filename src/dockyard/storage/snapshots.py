"""Container snapshots: an overlay of the image's read-only layers plus a private upper dir.

``<data_root>/snapshots/<cid>/{upper,work,merged}``. The snapshot holds its layers (``snap:<cid>``),
so an image removed with ``rmi -f`` keeps the layers its containers still run on. Mounts name lower
dirs by their absolute ``<layers>/l/<LINK>`` paths and calls mount(2) directly while the options fit the
kernel's one-page limit; a deeper image names them ``l/<LINK>`` relative to the layers dir, which only a child
process can use (a daemon thread must not change the whole process's cwd), so /usr/bin/mount does that one.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from typing import Any

from ..errors import NotFound, SystemError_
from ..sys import linux
from ..util.mounts import is_mountpoint
from ..util.placement import spread_new_dirs
from .db import StateDB
from .layers import LayerStore
from .tarsafe import end_of_archive, tree_chunks
from .trash import open_trash, remove_tree, trash_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    cid TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    chains TEXT NOT NULL,
    created REAL NOT NULL
);
"""

_MOUNT_DATA_MAX = 4095  # mount(2) copies one page of options, its NUL included


def mount_overlay(lowers: list[str], upper: str, work: str, merged: str, cwd: str) -> None:
    """Mount an overlay at ``merged``; ``lowers`` are relative to ``cwd``, top layer first.

    mount(2) itself when the options with absolute lower paths fit a page (a syscall instead of a
    process with libmount, several ms); else /usr/bin/mount run in ``cwd`` with the short relative names.
    """
    opts = f"lowerdir={':'.join(os.path.join(cwd, low) for low in lowers)},upperdir={upper},workdir={work}"
    data = os.fsencode(opts)
    if len(data) <= _MOUNT_DATA_MAX:
        try:
            linux.mount("overlay", merged, "overlay", 0, opts)
        except linux.SyscallError as exc:
            raise SystemError_(f"error mounting the container's filesystem: mount overlay on {merged}: "
                               f"{exc.reason}") from None
        return
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    res = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, merged],
                         cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemError_(f"error mounting the container's filesystem: {res.stderr.strip()}")


def _mounted(path: str) -> bool:
    """Whether something is mounted on ``path``: an overlay has its own device, so two lstat calls tell
    (reading all of mountinfo costs ~0.4 ms per call on the run path); mountinfo decides when stat cannot."""
    try:
        st = os.lstat(path)
        parent = os.lstat(os.path.dirname(path.rstrip("/")) or "/")
    except OSError:
        return os.path.lexists(path) and is_mountpoint(path)
    return st.st_dev != parent.st_dev or st.st_ino == parent.st_ino


def unmount(path: str) -> None:
    try:
        linux.umount2(path, 0)
    except linux.SyscallError as exc:
        if exc.errno == errno.EBUSY:  # something still has it open; detach so the dir can go
            try:
                linux.umount2(path, linux.MNT_DETACH)
            except linux.SyscallError as again:
                raise SystemError_(f"unmount {path}: {again.reason}") from None
        elif exc.errno not in (errno.EINVAL, errno.ENOENT):  # not mounted, or gone: nothing to do
            raise SystemError_(f"unmount {path}: {exc.reason}") from None


class Snapshotter:
    def __init__(self, db: StateDB, data_root: str, layers: LayerStore) -> None:
        self.db = db
        self.layers = layers  # the image service's layer store, handed to both by the composition root
        self.dir = os.path.join(data_root, "snapshots")
        self.trash = trash_dir(data_root)
        open_trash(self.trash)  # what a crash left in it is deleted in the background
        os.makedirs(self.dir, exist_ok=True)
        spread_new_dirs(self.dir)  # each writable layer in a lightly used block group (util/placement.py)
        db.ensure_schema(_SCHEMA)
        self._lock = threading.Lock()

    def _paths(self, cid: str) -> tuple[str, str, str, str]:
        base = os.path.join(self.dir, cid)
        return base, os.path.join(base, "upper"), os.path.join(base, "work"), os.path.join(base, "merged")

    def _chains(self, cid: str) -> list[str]:
        row = self.db.query_one("SELECT chains FROM snapshots WHERE cid=?", (cid,))
        if row is None:
            raise NotFound(f"no snapshot for container {cid}")
        chains: list[str] = json.loads(row["chains"])
        return chains

    def prepare(self, cid: str, image_id: str, chain_ids: list[str]) -> None:
        """Create the container's writable layer over the image's layers, ``chain_ids`` bottom first (no copy
        of image data; the caller read them from the image, so storage needs no image service)."""
        base, upper, work, merged = self._paths(cid)
        for d in (upper, work, merged):
            os.makedirs(d, exist_ok=True)
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO snapshots(cid, image_id, chains, created) VALUES (?,?,?,?)",
                      (cid, image_id, json.dumps(list(chain_ids)), time.time()))
            self.layers.hold(f"snap:{cid}", list(chain_ids))

    def ids(self) -> list[str]:
        """Every container id with a snapshot (start-up recovery compares them with the container records)."""
        return [r["cid"] for r in self.db.query("SELECT cid FROM snapshots", ())]

    def image_of(self, cid: str) -> str | None:
        row = self.db.query_one("SELECT image_id FROM snapshots WHERE cid=?", (cid,))
        return row["image_id"] if row else None

    def users_of(self, image_id: str) -> list[str]:
        return [r["cid"] for r in self.db.query("SELECT cid FROM snapshots WHERE image_id=?", (image_id,))]

    def mount(self, cid: str) -> str:
        chains = self._chains(cid)
        _, upper, work, merged = self._paths(cid)
        with self._lock:
            if _mounted(merged):
                return merged
            mount_overlay(self.layers.lower_links(chains), upper, work, merged, self.layers.dir)
        return merged

    def merged_path(self, cid: str) -> str:
        return self._paths(cid)[3]

    def unmount(self, cid: str) -> None:
        _, _, _, merged = self._paths(cid)
        with self._lock:
            if _mounted(merged):
                unmount(merged)

    def remove(self, cid: str) -> None:
        base, _, _, merged = self._paths(cid)
        with self._lock:
            if _mounted(merged):
                unmount(merged)
        remove_tree(base, self.trash)
        with self.db.tx() as c:
            c.execute("DELETE FROM snapshots WHERE cid=?", (cid,))
        self.layers.release(f"snap:{cid}")
        self.layers.gc()

    def upper_dir(self, cid: str) -> str:
        self._chains(cid)
        return self._paths(cid)[1]

    def changes(self, cid: str, hidden: Collection[str] = ()) -> list[dict[str, Any]]:
        """``docker diff``: Kind 0 = modified, 1 = added, 2 = deleted (from the upper dir).

        ``hidden`` paths (the engine's bind-mounted files, mount points) are left out, and so is a directory
        whose every entry in the upper dir is hidden: it is there only because a mount point had to be made.
        """
        chains = self._chains(cid)
        lowers = [self.layers.diff_dir(ch) for ch in reversed(chains)]
        upper = self._paths(cid)[1]
        out: list[dict[str, Any]] = []

        def in_lower(rel: str) -> bool:
            for low in lowers:
                p = os.path.join(low, rel)
                try:
                    st = os.lstat(p)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
            return False

        for dirpath, dirnames, filenames in os.walk(upper):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, upper)
                st = os.lstat(full)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    out.append({"Path": "/" + rel, "Kind": 2})
                else:
                    out.append({"Path": "/" + rel, "Kind": 0 if in_lower(rel) else 1})
        return _without_hidden(out, hidden)

    def size(self, cid: str) -> int:
        """Bytes in the writable layer (SizeRw)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self._paths(cid)[1]):
            for name in files:
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
        return total

    def diff_tar(self, cid: str) -> Iterator[bytes]:
        """The writable layer as a docker layer tar (overlay whiteouts turned into ``.wh.`` entries)."""
        upper = self.upper_dir(cid)
        yield from tree_chunks(upper, overlay_whiteouts=True)
        yield end_of_archive()

    def export(self, cid: str) -> Iterator[bytes]:
        """The container's whole filesystem as a tar (mounted for the duration if it was not)."""
        self._chains(cid)
        merged = self._paths(cid)[3]
        mounted_here = False
        if not is_mountpoint(merged):
            self.mount(cid)
            mounted_here = True
        try:
            yield from tree_chunks(merged, overlay_whiteouts=False)
            yield end_of_archive()
        finally:
            if mounted_here:
                self.unmount(cid)


def _without_hidden(changes: list[dict[str, Any]], hidden: Collection[str]) -> list[dict[str, Any]]:
    """Drop the hidden paths, then (deepest first) every directory all of whose changed entries were
    dropped: it is in the upper dir only because a mount point below it had to be made. A directory with
    no entries below it in the upper dir changed itself and stays."""
    if not hidden:
        return changes
    hide = set(hidden)
    children: dict[str, list[str]] = {}
    for ch in changes:
        children.setdefault(os.path.dirname(ch["Path"]), []).append(ch["Path"])
    kept: set[str] = set()
    for path in sorted((ch["Path"] for ch in changes), key=lambda p: p.count("/"), reverse=True):
        if path in hide:
            continue
        below = children.get(path)
        if not below or any(b in kept for b in below):
            kept.add(path)
    return [ch for ch in changes if ch["Path"] in kept]
