"""Docker's stdcopy framing, the one copy in util/: frames, split at any byte, a cut-short tail."""

from __future__ import annotations

from dockyard.client.api_client import iter_multiplexed
from dockyard.util.stdcopy import STDERR, STDOUT, Demuxer, frame, iter_frames


def test_frames_split_anywhere_come_back_whole() -> None:
    data = frame("stdout", b"hello\n") + frame(STDERR, b"oops") + frame("stdout", b"")
    for cut in range(len(data) + 1):
        d = Demuxer()
        got = list(d.feed(data[:cut])) + list(d.feed(data[cut:]))
        assert got == [(STDOUT, b"hello\n"), (STDERR, b"oops"), (STDOUT, b"")]
        assert d.pending == 0
    assert frame("stdout", b"ab")[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x02"


def test_a_stream_cut_mid_frame_ends_with_its_tail_as_stdout() -> None:
    data = frame("stderr", b"e") + b"\x01\x00\x00\x00\x00\x00\x00\x09abc"
    assert list(iter_frames([data[:3], data[3:]])) == [(STDERR, b"e"), (STDOUT, b"\x01\x00\x00\x00\x00\x00\x00\x09abc")]
    assert list(iter_multiplexed(iter([data]))) == list(iter_frames([data]))  # the client's is the same code
