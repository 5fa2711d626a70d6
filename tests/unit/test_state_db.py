"""StateDB: a connection per thread, handed on to later threads when its thread ends."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator

import pytest

from dockyard.storage.db import StateDB


@pytest.fixture
def db() -> Iterator[StateDB]:
    with tempfile.TemporaryDirectory(prefix="dyt-db") as d:
        sdb = StateDB(os.path.join(d, "state.db"))
        sdb.ensure_schema("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);")
        try:
            yield sdb
        finally:
            sdb.close()


def _in_thread(fn: object) -> object:
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))  # type: ignore[operator]
    t.start()
    t.join()
    return out[0]


def test_a_finished_threads_connection_serves_the_next_thread(db: StateDB) -> None:
    first = _in_thread(lambda: id(db.conn()))
    second = _in_thread(lambda: id(db.conn()))
    assert first == second
    assert id(db.conn()) != first  # the main thread keeps its own


def test_live_threads_never_share_a_connection(db: StateDB) -> None:
    seen: list[sqlite3.Connection] = []
    gate = threading.Barrier(4)

    def work() -> None:
        seen.append(db.conn())
        with db.tx() as c:
            c.execute("INSERT INTO kv VALUES (?, ?)", (str(threading.get_ident()), "x"))
        gate.wait()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 4
    assert db.query_one("SELECT COUNT(*) AS n FROM kv")["n"] == 4  # type: ignore[index]


def test_a_failed_transaction_leaves_nothing_to_the_next_thread(db: StateDB) -> None:
    def fail() -> None:
        with pytest.raises(RuntimeError), db.tx() as c:
            c.execute("INSERT INTO kv VALUES ('a', '1')")
            raise RuntimeError("boom")

    _in_thread(fail)
    assert _in_thread(lambda: db.conn().in_transaction) is False
    assert db.query("SELECT * FROM kv") == []
    with db.tx() as c:  # the write lock is free
        c.execute("INSERT INTO kv VALUES ('b', '2')")
    assert _in_thread(lambda: db.query_one("SELECT v FROM kv WHERE k='b'")["v"]) == "2"  # type: ignore[index]
