"""Fast checks of the server's pure logic: durations, scopes, access rules, ranges, tokens, htpasswd, buckets."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from regserver import make_token_key, write_htpasswd

from dockyard.distribution.server.app import _byte_range
from dockyard.distribution.server.auth import (
    AccessPolicy,
    AccessRule,
    Htpasswd,
    Scope,
    TokenSigner,
    parse_scope,
)
from dockyard.distribution.server.config import ConfigError, parse_duration
from dockyard.distribution.server.errors import RegistryError
from dockyard.distribution.server.protocol import valid_name
from dockyard.distribution.server.ratelimit import RateLimiter
from dockyard.distribution.server.store import RegistryStore


def test_durations() -> None:
    assert parse_duration("168h") == 168 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration(10) == 10
    for bad in ("", "10", "1x", "h1"):
        with pytest.raises(ConfigError):
            parse_duration(bad)


def test_names() -> None:
    for ok in ("a", "library/busybox", "a.b_c__d-e/f--g", "x" * 255):
        assert valid_name(ok), ok
    for bad in ("", "A", "a/../b", "a//b", "/a", "a/", "-a", "a-", "a..b", "x" * 256):
        assert not valid_name(bad), bad


def test_scopes_and_rules() -> None:
    s = parse_scope("repository:team/app:pull,push")
    assert s == Scope("repository", "team/app", ("pull", "push"))
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert parse_scope("nonsense") is None
    assert AccessPolicy().granted("alice", s) == ("pull", "push")
    assert AccessPolicy().granted("", s) == ()
    p = AccessPolicy([AccessRule("alice", "team/*", ("pull", "push")), AccessRule("*", "*", ("pull",)),
                      AccessRule("", "public/*", ("pull",))])
    assert p.granted("alice", s) == ("pull", "push")
    assert p.granted("bob", s) == ("pull",)
    assert p.granted("", s) == ()
    assert p.granted("", Scope("repository", "public/x", ("pull", "push"))) == ("pull",)


def test_byte_ranges() -> None:
    assert _byte_range(None, 100) is None
    assert _byte_range("bytes=0-9", 100) == (0, 9)
    assert _byte_range("bytes=90-", 100) == (90, 99)
    assert _byte_range("bytes=-10", 100) == (90, 99)
    assert _byte_range("bytes=95-200", 100) == (95, 99)
    assert _byte_range("items=1-2", 100) is None
    with pytest.raises(RegistryError) as e:
        _byte_range("bytes=100-", 100)
    assert e.value.status == 416


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_tokens_sign_verify_tamper(tmp_path: str, kind: str) -> None:
    signer = TokenSigner(make_token_key(os.path.join(str(tmp_path), "k.pem"), kind))
    assert signer.alg == ("ES256" if kind == "ec" else "RS256")
    tok = signer.sign({"sub": "alice", "exp": time.time() + 60})
    assert signer.verify(tok) == {"sub": "alice", "exp": pytest.approx(time.time() + 60, abs=5)}
    h, c, s = tok.split(".")
    import base64
    import json

    forged_claims = base64.urlsafe_b64encode(json.dumps({"sub": "root"}).encode()).rstrip(b"=").decode()
    assert signer.verify(f"{h}.{forged_claims}.{s}") is None
    assert signer.verify("not.a.token") is None
    assert signer.verify("garbage") is None


def test_htpasswd_bcrypt(tmp_path: str) -> None:
    path = os.path.join(str(tmp_path), "htpasswd")
    write_htpasswd(path, {"alice": "s3cret"})
    with open(path) as f:
        assert f.read().startswith("alice:$2y$")  # what htpasswd -B writes
    h = Htpasswd(path)
    assert h.check("alice", "s3cret")
    assert h.check("alice", "s3cret")  # remembered
    assert not h.check("alice", "wrong")
    assert not h.check("bob", "s3cret")
    time.sleep(0.01)
    write_htpasswd(path, {"bob": "pw"})  # the file is re-read when it changes
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert h.check("bob", "pw") and not h.check("alice", "s3cret")


def test_rate_limiter() -> None:
    rl = RateLimiter(10, burst=5)
    assert [rl.allow("1.2.3.4") for _ in range(5)] == [0.0] * 5
    wait = rl.allow("1.2.3.4")
    assert 0 < wait <= 0.1
    assert rl.allow("5.6.7.8") == 0.0  # another client has its own bucket
    time.sleep(0.25)
    assert rl.allow("1.2.3.4") == 0.0
    assert RateLimiter(0).allow("x") == 0.0


def test_purge_keeps_an_upload_being_started(tmp_path: Path) -> None:
    """start_upload makes the directory before the data file: a purge in between must not take it."""
    store = RegistryStore(str(tmp_path))
    os.makedirs(os.path.join(store.uploads_dir, "11111111-1111-4111-8111-111111111111"))
    assert store.purge_uploads(max_age=3600) == []
    assert os.listdir(store.uploads_dir) == ["11111111-1111-4111-8111-111111111111"]
    assert store.purge_uploads(max_age=3600, now=time.time() + 7200) == ["11111111-1111-4111-8111-111111111111"]


def _hammer(rl: RateLimiter, calls: int, threads: int, out: Any) -> None:
    allowed = [0] * threads

    def run(i: int) -> None:
        allowed[i] = sum(1 for _ in range(calls) if rl.allow("10.0.0.1") == 0.0)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.send(sum(allowed))


def test_rate_limiter_is_exact_across_processes_and_threads() -> None:
    # the server's workers are forked after the limiter is made: 4 processes x 4 threads share one bucket,
    # which refills too slowly to matter here, so exactly the burst gets through, not a token more
    rl = RateLimiter(0.0001, burst=300)
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for _ in range(4):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_hammer, args=(rl, 400, 4, w))
        p.start()
        pipes.append(r)
        procs.append(p)
    total = sum(r.recv() for r in pipes)
    for p in procs:
        p.join(30)
    assert total == 300
    assert rl.allow("10.0.0.1") > 0


def test_rate_limiter_buckets_are_not_shared_by_colliding_clients() -> None:
    # more clients than slots a hash may probe all land at once: each keeps its own budget, and a newcomer
    # takes a slot only from a bucket that has refilled (or, all busy, the longest idle one)
    rl = RateLimiter(0.0001, burst=3)
    clients = [f"10.1.{i // 250}.{i % 250}" for i in range(3000)]
    for c in clients:
        assert [rl.allow(c) == 0.0 for _ in range(3)] == [True] * 3, c
    assert sum(1 for c in clients if rl.allow(c) == 0.0) == 0  # nobody got a fresh bucket by colliding
    fast = RateLimiter(1000, burst=2)  # buckets refill within milliseconds: idle slots are handed on
    for c in clients:
        fast.allow(c)
    time.sleep(0.01)
    assert all(fast.allow(c) == 0.0 for c in clients)
