"""Read-only layer directories, unpacked once and shared, keyed by chain ID.

Layout (like overlay2): ``layers/<chain-hex>/diff`` holds the unpacked layer; ``layers/l/<LINK>`` is a
short symlink to it so an overlay option string naming 100+ lower dirs stays under one page
(mounts are done with the layers dir as working directory). The uncompressed layer tar is kept as a
blob named by its diff ID, so ``save`` hands out byte-identical layers; or, for a layer registered with
``keep_tar=False`` (pull), as tar-split metadata beside ``diff`` (``storage/tarsplit.py``), from which
:meth:`LayerStore.open_tar` rebuilds the identical tar: the tar's bytes are then written once, not twice.

A layer is held by owners (``image:<id>``, ``snap:<cid>``, ``tmp:<nonce>`` while being built);
``gc()`` removes layers no owner holds, and their blobs when no other layer shares the diff ID.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO

from ..errors import NotFound
from ..util import failpoint
from ..util.placement import spread_new_dirs
from .blobs import BlobStore
from .db import StateDB
from .tarsafe import extract_layer
from .tarsplit import SIZE_NAME, SPLIT_NAME, RebuiltTar, SplitRecorder, tar_chunks

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    link TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_refs (
    owner TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (owner, chain_id)
);
CREATE INDEX IF NOT EXISTS layer_refs_chain ON layer_refs(chain_id);
"""

EMPTY_LINK = "EMPTY"
_LINK_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Docker's chain IDs: chain(L0) = diff(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))."""
    out: list[str] = []
    for diff in diff_ids:
        if not out:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    link: str
    size: int


class LayerStore:
    def __init__(self, db: StateDB, data_root: str, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs
        self.dir = os.path.join(data_root, "layers")
        self.links = os.path.join(self.dir, "l")
        os.makedirs(self.links, exist_ok=True)
        spread_new_dirs(self.dir)  # each layer's files in a fresh block group (see storage/placement.py)
        db.ensure_schema(_SCHEMA)
        self._lock = threading.Lock()
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty, exist_ok=True)
        if not os.path.islink(os.path.join(self.links, EMPTY_LINK)):
            os.symlink("../empty", os.path.join(self.links, EMPTY_LINK))

    def diff_dir(self, chain_id: str) -> str:
        return os.path.join(self.dir, chain_id.split(":", 1)[1], "diff")

    def get(self, chain_id: str) -> Layer:
        row = self.db.query_one("SELECT * FROM layers WHERE chain_id=?", (chain_id,))
        if row is None:
            raise NotFound(f"layer {chain_id} not found")
        return Layer(row["chain_id"], row["diff_id"], row["parent"], row["link"], row["size"])

    def exists(self, chain_id: str) -> bool:
        return self.db.query_one("SELECT 1 FROM layers WHERE chain_id=?", (chain_id,)) is not None

    def register(self, stream: IO[bytes], parent: str | None, holder: str,
                 blob_file: str | None = None, keep_tar: bool = True) -> Layer:
        """Unpack a layer tar on top of ``parent`` (a chain ID), keep its blob, hold it for ``holder``.

        ``blob_file``: ``stream`` is this uncompressed file on the same filesystem, which becomes the
        blob by a rename instead of a copy. ``keep_tar=False``: keep tar-split metadata instead of the
        blob; raises :class:`~dockyard.storage.tarsplit.SplitConflict` (nothing kept) for a tar that
        cannot be rebuilt from its tree, which the caller then registers again with ``keep_tar=True``.
        """
        tmp = os.path.join(self.dir, f".tmp-{secrets.token_hex(8)}")
        os.makedirs(os.path.join(tmp, "diff"))
        split_file = None if keep_tar or blob_file else open(os.path.join(tmp, SPLIT_NAME), "wb")  # noqa: SIM115
        # the extractor hashes the uncompressed bytes it copies to the writer (the diff ID): one sha256, not two
        writer = None if blob_file or split_file else self.blobs.writer(hashing=False)
        try:
            try:
                stats = extract_layer(stream, os.path.join(tmp, "diff"), copy_to=writer,  # type: ignore[arg-type]
                                      split=SplitRecorder(split_file) if split_file else None)
            finally:
                if split_file is not None:
                    split_file.flush()
                    os.fsync(split_file.fileno())
                    split_file.close()
            if writer is not None:
                diff_id = writer.commit(stats.diff_id)
            elif split_file is not None:
                diff_id = stats.diff_id
                with open(os.path.join(tmp, SIZE_NAME), "w") as f:
                    f.write(str(stats.tar_size))
            else:
                diff_id = stats.diff_id
                os.replace(blob_file, self.blobs.path(diff_id))  # type: ignore[arg-type]
        except BaseException:
            if writer is not None:
                writer.abort()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self._install(tmp, diff_id, parent, holder, stats.content_size)

    def register_written(self, write: Callable[[str], Iterable[bytes]], parent: str | None, holder: str) -> Layer:
        """A layer whose producer makes its files in the new diff directory itself (``write(diff_dir)``) while
        yielding the layer's tar, which is hashed (the diff ID) and kept as the blob: no tar is parsed back and
        the content is read once. The producer must make exactly the tree its tar describes."""
        tmp = os.path.join(self.dir, f".tmp-{secrets.token_hex(8)}")
        diff = os.path.join(tmp, "diff")
        os.makedirs(diff)
        writer = self.blobs.writer(hashing=True)
        try:
            for chunk in write(diff):
                writer.write(chunk)
            diff_id = writer.commit()
        except BaseException:
            writer.abort()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self._install(tmp, diff_id, parent, holder, _content_size(diff))

    def _install(self, tmp: str, diff_id: str, parent: str | None, holder: str, content_size: int) -> Layer:
        """Make the unpacked ``tmp`` the layer (unless the same chain exists already) and hold it."""
        failpoint.hit("layer.register.blob-written")  # the blob is kept, its .tmp- dir is not: start-up sweeps
        chain = chain_ids([parent, diff_id])[1] if parent else diff_id
        with self._lock:
            if self.exists(chain):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                link = self._new_link()
                final = os.path.join(self.dir, chain.split(":", 1)[1])
                shutil.rmtree(final, ignore_errors=True)  # leftover of a crash between rename and insert
                try:
                    os.rename(tmp, final)
                    os.symlink(f"../{chain.split(':', 1)[1]}/diff", os.path.join(self.links, link))
                    with self.db.tx() as c:
                        c.execute("INSERT INTO layers(chain_id, diff_id, parent, link, size, created) "
                                  "VALUES (?,?,?,?,?,strftime('%s','now'))",
                                  (chain, diff_id, parent, link, content_size))
                except BaseException:  # a full disk refusing the row: nothing of the layer stays
                    self._undo_register(tmp, final, link, diff_id)
                    raise
            self.hold(holder, [chain])
        return self.get(chain)

    def _split_dir(self, diff_id: str) -> str | None:
        """A layer directory holding tar-split metadata for ``diff_id`` (any chain with that diff ID)."""
        for row in self.db.query("SELECT chain_id FROM layers WHERE diff_id=?", (diff_id,)):
            d = os.path.join(self.dir, row["chain_id"].split(":", 1)[1])
            if os.path.exists(os.path.join(d, SPLIT_NAME)):
                return d
        return None

    def tar_size(self, diff_id: str) -> int:
        """The size of the layer's uncompressed tar."""
        if self.blobs.has(diff_id):
            return self.blobs.size(diff_id)
        d = self._split_dir(diff_id)
        if d is None:
            raise NotFound(f"layer tar {diff_id} not found")
        with open(os.path.join(d, SIZE_NAME)) as f:
            return int(f.read())

    def open_tar(self, diff_id: str) -> IO[bytes]:
        """The layer's uncompressed tar, byte for byte as it was registered (read from its blob, or rebuilt
        from the unpacked tree and checked against the diff ID as it is read)."""
        try:
            return open(self.blobs.path(diff_id), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            pass
        d = self._split_dir(diff_id)
        if d is None:
            raise NotFound(f"layer tar {diff_id} not found")
        return RebuiltTar(tar_chunks(os.path.join(d, SPLIT_NAME), os.path.join(d, "diff"), diff_id))  # type: ignore[return-value]

    def _undo_register(self, tmp: str, final: str, link: str, diff_id: str) -> None:
        try:
            os.unlink(os.path.join(self.links, link))
        except FileNotFoundError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        if self.db.query_one("SELECT 1 FROM layers WHERE diff_id=?", (diff_id,)) is None:
            self.blobs.delete(diff_id)

    def _new_link(self) -> str:
        while True:
            link = "".join(secrets.choice(_LINK_ALPHABET) for _ in range(10))
            if not os.path.lexists(os.path.join(self.links, link)):
                return link

    def hold(self, owner: str, chains: list[str]) -> None:
        with self.db.tx() as c:
            c.executemany("INSERT OR IGNORE INTO layer_refs(owner, chain_id) VALUES (?,?)",
                          [(owner, ch) for ch in chains])

    def release(self, owner: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM layer_refs WHERE owner=?", (owner,))

    def lower_links(self, chains: list[str]) -> list[str]:
        """``l/<LINK>`` names for an overlay lowerdir, top layer first (an empty image gets an empty dir)."""
        if not chains:
            return [f"l/{EMPTY_LINK}"]
        return [f"l/{self.get(ch).link}" for ch in reversed(chains)]

    def gc(self) -> list[str]:
        """Remove layers nobody holds, and their blobs when no other layer has the same content."""
        removed: list[str] = []
        with self._lock:
            rows = self.db.query(
                "SELECT chain_id, diff_id, link FROM layers WHERE chain_id NOT IN "
                "(SELECT chain_id FROM layer_refs)")
            for row in rows:
                with self.db.tx() as c:
                    c.execute("DELETE FROM layers WHERE chain_id=?", (row["chain_id"],))
                try:
                    os.unlink(os.path.join(self.links, row["link"]))
                except FileNotFoundError:
                    pass
                shutil.rmtree(os.path.join(self.dir, row["chain_id"].split(":", 1)[1]), ignore_errors=True)
                if self.db.query_one("SELECT 1 FROM layers WHERE diff_id=?", (row["diff_id"],)) is None:
                    self.blobs.delete(row["diff_id"])
                removed.append(row["chain_id"])
        return removed


def _content_size(root: str) -> int:
    """Bytes of the regular files below ``root`` (what an extraction counts as the layer's content)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
