"""What the daemon knows about layers' compressed forms: diff ID → (compressed digest, size, media type) and
which repositories of which registry hold that blob. Filled by pulls and pushes, read by pushes, so a layer the
registry already has (or holds in another repository, for a cross-repository mount) is not compressed or
uploaded again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.db import StateDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dist_blobs (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (diff_id, digest)
);
CREATE TABLE IF NOT EXISTS dist_blob_repos (
    digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repo TEXT NOT NULL,
    PRIMARY KEY (digest, registry, repo)
);
"""


@dataclass(frozen=True)
class KnownBlob:
    digest: str
    size: int
    media_type: str


class BlobMetadata:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.ensure_schema(_SCHEMA)

    def add(self, diff_id: str, digest: str, size: int, media_type: str, registry: str, repo: str) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO dist_blobs(diff_id, digest, size, media_type) VALUES (?,?,?,?)",
                      (diff_id, digest, size, media_type))
            c.execute("INSERT OR IGNORE INTO dist_blob_repos(digest, registry, repo) VALUES (?,?,?)",
                      (digest, registry, repo))

    def forget_repo(self, digest: str, registry: str, repo: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM dist_blob_repos WHERE digest=? AND registry=? AND repo=?", (digest, registry, repo))

    def compressed(self, diff_id: str) -> list[KnownBlob]:
        rows = self.db.query("SELECT digest, size, media_type FROM dist_blobs WHERE diff_id=?", (diff_id,))
        return [KnownBlob(r["digest"], r["size"], r["media_type"]) for r in rows]

    def repos(self, digest: str, registry: str) -> list[str]:
        return [r["repo"] for r in self.db.query(
            "SELECT repo FROM dist_blob_repos WHERE digest=? AND registry=? ORDER BY repo", (digest, registry))]
