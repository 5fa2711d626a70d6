"""The build cache: which image a step produced, keyed by what determines its result.

A key is the parent image, the instruction after substitution (with the build args a RUN sees) and, for
COPY/ADD, the checksum of the sources. Rows live in the state database, so a rebuild after a daemon restart
still hits. The images the rows point at are ordinary (untagged) images; pruning a row removes its image
when nothing else needs it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from ..storage.db import StateDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    parent TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    usage_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
"""


def cache_key(parent: str, *parts: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps([parent, *parts], sort_keys=True).encode()).hexdigest()


@dataclass
class CacheRecord:
    key: str
    image_id: str
    parent: str
    kind: str
    description: str
    size: int
    created: float
    last_used: float
    usage_count: int


class BuildCache:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.ensure_schema(_SCHEMA)

    def get(self, key: str) -> str | None:
        """The image cached for ``key``; the use is recorded by ``touch`` (one write for a whole build)."""
        row = self.db.query_one("SELECT image_id FROM build_cache WHERE key=?", (key,))
        return str(row["image_id"]) if row else None

    def touch(self, keys: list[str]) -> None:
        if not keys:
            return
        now = time.time()
        with self.db.tx() as c:
            c.executemany("UPDATE build_cache SET last_used=?, usage_count=usage_count+1 WHERE key=?",
                          [(now, k) for k in keys])

    def peek(self, key: str) -> str | None:
        row = self.db.query_one("SELECT image_id FROM build_cache WHERE key=?", (key,))
        return str(row["image_id"]) if row else None

    def put(self, key: str, image_id: str, parent: str, kind: str, description: str, size: int) -> None:
        now = time.time()
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO build_cache(key, image_id, parent, kind, description, size, created, "
                      "last_used, usage_count) VALUES (?,?,?,?,?,?,?,?,1)",
                      (key, image_id, parent, kind, description, size, now, now))

    def drop(self, key: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM build_cache WHERE key=?", (key,))

    def all(self) -> list[CacheRecord]:
        rows = self.db.query("SELECT * FROM build_cache ORDER BY last_used DESC")
        return [CacheRecord(r["key"], r["image_id"], r["parent"], r["kind"], r["description"], int(r["size"]),
                            float(r["created"]), float(r["last_used"]), int(r["usage_count"])) for r in rows]

    def lineage(self, image_id: str) -> set[str]:
        """``image_id`` and every image the cache records as a step before it."""
        seen: set[str] = set()
        cur = image_id
        while cur and cur not in seen:
            seen.add(cur)
            row = self.db.query_one("SELECT parent FROM build_cache WHERE image_id=? LIMIT 1", (cur,))
            cur = str(row["parent"]) if row else ""
        return seen

    def total_size(self) -> int:
        row = self.db.query_one("SELECT COALESCE(SUM(size),0) AS s FROM build_cache")
        return int(row["s"]) if row else 0
