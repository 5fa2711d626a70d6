"""Docker's stream framing: headers, incremental parsing across arbitrary splits."""

from dockyard.containers.stdcopy import STDERR, STDOUT, Demuxer, demux_all, frame


def test_frame_header() -> None:
    assert frame("stdout", b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_demux_across_splits() -> None:
    wire = frame("stdout", b"a" * 300) + frame("stderr", b"err") + frame("stdout", b"z")
    d = Demuxer()
    got = []
    for i in range(0, len(wire), 7):
        got.extend(d.feed(wire[i : i + 7]))
    assert got == [(STDOUT, b"a" * 300), (STDERR, b"err"), (STDOUT, b"z")]
    assert d.pending == 0
    assert demux_all(wire) == {STDOUT: b"a" * 300 + b"z", STDERR: b"err"}


def test_detach_keys_and_escape_filter() -> None:
    import pytest

    from dockyard.containers.stdcopy import EscapeFilter, parse_detach_keys

    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("a,ctrl-@,ctrl-[") == b"a\x00\x1b"
    with pytest.raises(ValueError, match="Invalid escape keys"):
        parse_detach_keys("ctrl-pp")
    f = EscapeFilter(b"\x10\x11")
    assert f.feed(b"ab\x10") == (b"ab", False)  # a possible start is held back
    assert f.feed(b"c") == (b"\x10c", False)  # …and released when the sequence breaks
    assert f.feed(b"x\x10\x10") == (b"x\x10", False)
    assert f.feed(b"\x11rest") == (b"", True)
