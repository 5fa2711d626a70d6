"""The context digest memo persisted in the daemon's state database, so a daemon restart does not read every
context file again: loaded once when the build service starts, new digests written in one transaction after
each build. Bounded: beyond ``MAX_ROWS`` the oldest rows go (they are only a shortcut; a missing row costs one
read of the file)."""

from __future__ import annotations

from ..storage.db import StateDB
from .context import MEMO, DigestMemo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS build_file_digests (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (dev, ino, size, mtime_ns, ctime_ns)
);
"""
MAX_ROWS = 200_000


class DigestStore:
    def __init__(self, db: StateDB, memo: DigestMemo = MEMO, max_rows: int = MAX_ROWS) -> None:
        self.db = db
        self.memo = memo
        self.max_rows = max_rows
        db.ensure_schema(_SCHEMA)

    def load(self) -> int:
        rows = self.db.query("SELECT dev, ino, size, mtime_ns, ctime_ns, digest FROM build_file_digests "
                             "ORDER BY rowid")
        self.memo.preload([((int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])), str(r[5])) for r in rows])
        return len(rows)

    def save(self) -> int:
        new = self.memo.drain_new()
        if not new:
            return 0
        with self.db.tx() as c:
            c.executemany("INSERT OR REPLACE INTO build_file_digests(dev, ino, size, mtime_ns, ctime_ns, digest) "
                          "VALUES (?,?,?,?,?,?)", [(*k, v) for k, v in new.items()])
            row = c.execute("SELECT COUNT(*) FROM build_file_digests").fetchone()
            excess = int(row[0]) - self.max_rows
            if excess > 0:
                c.execute("DELETE FROM build_file_digests WHERE rowid IN (SELECT rowid FROM build_file_digests "
                          "ORDER BY rowid LIMIT ?)", (excess,))
        return len(new)
