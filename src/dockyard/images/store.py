"""Image records and references in SQLite; the config blob is the image (ID = its digest)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound
from ..storage.blobs import BlobStore
from ..storage.db import StateDB
from ..storage.layers import LayerStore, chain_ids
from .reference import Reference, parse_normalized

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    parent TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    last_tag_time TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS image_refs (
    ref TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    is_digest INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS image_refs_image ON image_refs(image_id);
"""


@dataclass
class Image:
    id: str
    config: dict[str, Any]
    parent: str
    size: int
    created_ts: float
    refs: list[Reference] = field(default_factory=list)
    last_tag_time: str = ""

    @property
    def diff_ids(self) -> list[str]:
        ids: list[str] = (self.config.get("rootfs") or {}).get("diff_ids") or []
        return ids

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def repo_tags(self) -> list[str]:
        return [r.familiar() for r in self.refs if r.tag]

    @property
    def repo_digests(self) -> list[str]:
        return [r.familiar() for r in self.refs if r.digest]

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]


class ImageStore:
    def __init__(self, db: StateDB, blobs: BlobStore, layers: LayerStore) -> None:
        self.db = db
        self.blobs = blobs
        self.layers = layers
        db.ensure_schema(_SCHEMA)

    def _load(self, row: Any) -> Image:
        cfg = json.loads(self.blobs.read_bytes(row["id"]))
        refs = [parse_normalized(r["ref"]) for r in
                self.db.query("SELECT ref FROM image_refs WHERE image_id=? ORDER BY created, ref", (row["id"],))]
        return Image(row["id"], cfg, row["parent"], row["size"], row["created"], refs, row["last_tag_time"])

    def get(self, image_id: str) -> Image:
        row = self.db.query_one("SELECT * FROM images WHERE id=?", (image_id,))
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        return self._load(row)

    def exists(self, image_id: str) -> bool:
        return self.db.query_one("SELECT 1 FROM images WHERE id=?", (image_id,)) is not None

    def all(self) -> list[Image]:
        return [self._load(r) for r in self.db.query("SELECT * FROM images ORDER BY created DESC")]

    def search_prefix(self, prefix: str) -> list[str]:
        h = prefix[7:] if prefix.startswith("sha256:") else prefix
        return [r["id"] for r in self.db.query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{h}%",))]

    def ref_target(self, ref: Reference) -> str | None:
        row = self.db.query_one("SELECT image_id FROM image_refs WHERE ref=?", (str(ref),))
        return row["image_id"] if row else None

    def tags_of(self, name: str) -> list[str]:
        """The tags of the repository ``name`` (normalised, ``domain/path``), for ``push`` of every tag."""
        prefix = name + ":"
        rows = self.db.query("SELECT ref FROM image_refs WHERE is_digest=0 AND substr(ref, 1, ?)=? ORDER BY ref",
                             (len(prefix), prefix))
        return [r["ref"][len(prefix):] for r in rows if "/" not in r["ref"][len(prefix):]]

    def create(self, config_bytes: bytes, parent: str = "") -> Image:
        """Store the config blob and the image row; the image holds its layers (which must exist)."""
        digest = self.blobs.put_bytes(config_bytes)
        cfg = json.loads(config_bytes)
        chains = chain_ids((cfg.get("rootfs") or {}).get("diff_ids") or [])
        size = sum(self.layers.get(ch).size for ch in chains)
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO images(id, parent, created, size) VALUES (?,?,?,?)",
                      (digest, parent, time.time(), size))
            self.layers.hold(f"image:{digest}", chains)
        return self.get(digest)

    def set_ref(self, ref: Reference, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; returns the image it pointed at before (if another)."""
        prev = self.ref_target(ref)
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO image_refs(ref, image_id, is_digest, created) VALUES (?,?,?,?)",
                      (str(ref), image_id, 1 if ref.digest else 0, time.time()))
            c.execute("UPDATE images SET last_tag_time=? WHERE id=?",
                      (time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()), image_id))
        return prev if prev != image_id else None

    def delete_ref(self, ref: Reference) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM image_refs WHERE ref=?", (str(ref),))

    def children(self, image_id: str) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM images WHERE parent=?", (image_id,))]

    def delete(self, image_id: str) -> None:
        """Drop the record, its refs and its hold on layers; unheld layers and the config go."""
        with self.db.tx() as c:
            c.execute("DELETE FROM image_refs WHERE image_id=?", (image_id,))
            c.execute("DELETE FROM images WHERE id=?", (image_id,))
            c.execute("DELETE FROM layer_refs WHERE owner=?", (f"image:{image_id}",))
        self.blobs.delete(image_id)
        self.layers.gc()
