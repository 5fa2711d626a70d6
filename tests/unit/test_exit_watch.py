"""The daemon's one exit-watching thread: a line, EOF and garbage each end a watch exactly once."""

from __future__ import annotations

import socket
import threading

from dockyard.containers.exit_watch import MAX_LINE, ExitWatcher


def _watched(watcher: ExitWatcher) -> tuple[socket.socket, list[bytes], threading.Event]:
    ours, theirs = socket.socketpair()
    got: list[bytes] = []
    done = threading.Event()
    watcher.watch(ours, lambda line: (got.append(line), done.set()))
    return theirs, got, done


def test_line_eof_and_overlong_each_end_their_watch_once() -> None:
    watcher = ExitWatcher()
    shims = [_watched(watcher) for _ in range(3)]
    (a, got_a, done_a), (b, got_b, done_b), (c, got_c, done_c) = shims
    a.sendall(b'{"exit_code": 3')
    a.sendall(b', "oom_killed": false}\n')
    b.close()
    c.sendall(b"x" * (MAX_LINE + 10))
    for done in (done_a, done_b, done_c):
        assert done.wait(5)
    assert got_a == [b'{"exit_code": 3, "oom_killed": false}']
    assert got_b == [b""] and got_c == [b""]
    assert not watcher._watches  # every socket closed and forgotten
    a.close()
    c.close()


def test_many_watches_share_one_thread() -> None:
    watcher = ExitWatcher()
    before = threading.active_count()
    shims = [_watched(watcher) for _ in range(50)]
    assert threading.active_count() - before == 1
    for theirs, _, _ in shims:
        theirs.sendall(b"{}\n")
    for theirs, got, done in shims:
        assert done.wait(5) and got == [b"{}"]
        theirs.close()
