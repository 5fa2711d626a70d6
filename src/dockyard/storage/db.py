"""The daemon's SQLite state database (WAL mode), shared by every service.

One connection per thread (sqlite3 connections are not shareable across
threads); every user-visible change is one transaction via ``tx()``.
Each service owns its tables and declares them with ``ensure_schema``.
The API serves each connection on a new thread: when a thread ends, its
connection goes back to a small pool for the next thread instead of being
closed (opening one, with its pragmas and schema parse, costs ~0.3 ms).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_POOL_SIZE = 8  # idle connections kept for the next threads


class _Lease:
    """A thread's connection; when the thread ends (its thread-local data is dropped) it returns to the pool."""

    __slots__ = ("conn", "pool", "__weakref__")

    def __init__(self, conn: sqlite3.Connection, pool: list[sqlite3.Connection]) -> None:
        self.conn = conn
        self.pool = pool

    def __del__(self) -> None:
        c = self.conn
        try:
            if not c.in_transaction and len(self.pool) < _POOL_SIZE:
                self.pool.append(c)  # list.append is atomic: no lock needed in a finalizer
                return
            c.close()
        except sqlite3.Error:
            pass


class StateDB:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._pool: list[sqlite3.Connection] = []
        conn = self.conn()
        conn.execute("PRAGMA journal_mode=WAL")

    def conn(self) -> sqlite3.Connection:
        lease = getattr(self._local, "lease", None)
        if lease is None:
            try:
                c = self._pool.pop()  # atomic: a connection no live thread holds
            except IndexError:
                c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                c.row_factory = sqlite3.Row
                c.execute("PRAGMA synchronous=NORMAL")
                c.execute("PRAGMA foreign_keys=ON")
            lease = self._local.lease = _Lease(c, self._pool)
        return lease.conn  # type: ignore[no-any-return]

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        c = self.conn()
        if c.in_transaction:  # nested: join the outer transaction
            yield c
            return
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def ensure_schema(self, ddl: str) -> None:
        """Run idempotent DDL (CREATE TABLE IF NOT EXISTS …) once per process."""
        with self._schema_lock:
            self.conn().executescript(ddl)

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return self.conn().execute(sql, params).fetchone()

    def close(self) -> None:
        """Close this thread's connection and the idle ones."""
        lease = getattr(self._local, "lease", None)
        if lease is not None:
            self._local.lease = None
            lease.pool = []  # its finalizer closes it rather than pooling it
            del lease
        while self._pool:
            self._pool.pop().close()
