"""The context digest memo and its persisted store: an unchanged file is known by its stat key (also after a
restart, through the state database), a touched file is hashed again to the same digest (the cache key stays
content-based), a file changed too recently to trust its timestamps is not remembered, and the table is
bounded."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from dockyard.build import context
from dockyard.build.context import DigestMemo, file_digest, stat_key
from dockyard.build.digest_store import DigestStore
from dockyard.storage.db import StateDB


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> DigestMemo:
    m = DigestMemo()
    monkeypatch.setattr(context, "MEMO", m)
    return m


def _old_file(path: str, data: bytes) -> os.stat_result:
    with open(path, "wb") as f:
        f.write(data)
    time.sleep(0.25)  # older than the racy window
    return os.lstat(path)


def test_digest_is_remembered_and_persisted(tmp_path: object, memo: DigestMemo) -> None:
    root = str(tmp_path)
    path = os.path.join(root, "f")
    st = _old_file(path, b"content one")
    want = hashlib.sha256(b"content one").hexdigest()
    assert file_digest(path, st) == want
    assert memo.get(stat_key(st)) == want
    db = StateDB(os.path.join(root, "state.db"))
    store = DigestStore(db, memo)
    assert store.save() == 1
    assert store.save() == 0  # nothing new

    fresh = DigestMemo()  # a restarted daemon
    assert DigestStore(StateDB(os.path.join(root, "state.db")), fresh).load() == 1
    assert fresh.get(stat_key(st)) == want


def test_remembered_digest_is_used_without_reading(tmp_path: object, memo: DigestMemo) -> None:
    path = os.path.join(str(tmp_path), "f")
    st = _old_file(path, b"abc")
    memo.put(stat_key(st), "remembered")  # a stale entry would show here: the file is not read for a known key
    assert file_digest(path, st) == "remembered"


def test_touched_file_is_hashed_again_to_the_same_digest(tmp_path: object, memo: DigestMemo) -> None:
    path = os.path.join(str(tmp_path), "f")
    st = _old_file(path, b"same bytes")
    first = file_digest(path, st)
    os.utime(path, (1_000_000, 1_000_000))
    st2 = os.lstat(path)
    assert stat_key(st2) != stat_key(st)
    assert file_digest(path, st2) == first == hashlib.sha256(b"same bytes").hexdigest()


def test_changed_file_misses(tmp_path: object, memo: DigestMemo) -> None:
    path = os.path.join(str(tmp_path), "f")
    st = _old_file(path, b"aaaa")
    file_digest(path, st)
    with open(path, "wb") as f:
        f.write(b"bbbb")  # same size
    st2 = os.lstat(path)
    assert file_digest(path, st2) == hashlib.sha256(b"bbbb").hexdigest()


def test_recently_changed_file_is_not_remembered(tmp_path: object, memo: DigestMemo) -> None:
    path = os.path.join(str(tmp_path), "f")
    with open(path, "wb") as f:
        f.write(b"just written")
    st = os.lstat(path)
    assert file_digest(path, st) == hashlib.sha256(b"just written").hexdigest()
    assert memo.get(stat_key(st)) is None
    assert memo.drain_new() == {}


def test_store_is_bounded(tmp_path: object, memo: DigestMemo) -> None:
    db = StateDB(os.path.join(str(tmp_path), "state.db"))
    store = DigestStore(db, memo, max_rows=10)
    for i in range(25):
        memo.put((1, i, 1, 1, 1), f"d{i}")
        if i % 5 == 4:
            store.save()
    rows = db.query("SELECT ino FROM build_file_digests ORDER BY ino")
    assert [r[0] for r in rows] == list(range(15, 25))  # the newest kept
