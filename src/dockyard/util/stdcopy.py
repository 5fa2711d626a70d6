"""Docker's multiplexed stream framing (moby's stdcopy), the one copy every side uses.

Non-TTY attach, exec and log streams carry an 8-byte header per chunk: the stream id (0 stdin, 1 stdout,
2 stderr, 3 systemerr), three zero bytes, the payload length as a big-endian uint32.  Used by the shims
(which frame), the daemon (which frames logs and relays), and the client and CLI (which split).
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False  # the CLI and every shim import this: typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxI")
STREAMS = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR}
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def frame(stream: int | str, data: bytes) -> bytes:
    """One framed chunk for ``stream`` (an id or "stdin"/"stdout"/"stderr")."""
    sid = STREAMS[stream] if isinstance(stream, str) else stream
    return HEADER.pack(sid, len(data)) + data


class Demuxer:
    """Incremental parser: feed bytes as they come, get (stream id, payload) back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while len(self._buf) >= HEADER.size:
            sid, size = HEADER.unpack_from(self._buf)
            if len(self._buf) < HEADER.size + size:
                break
            payload = bytes(self._buf[HEADER.size : HEADER.size + size])
            del self._buf[: HEADER.size + size]
            yield sid, payload

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buf)

    def rest(self) -> bytes:
        """What is buffered and not a whole frame (a stream that ended mid-frame)."""
        rest, self._buf = bytes(self._buf), bytearray()
        return rest


def iter_frames(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(stream id, payload) of a framed stream given in arbitrary pieces; a trailing partial frame, if
    any, comes last as stdout (what the docker CLI prints of a stream cut short)."""
    d = Demuxer()
    for piece in chunks:
        yield from d.feed(piece)
    rest = d.rest()
    if rest:
        yield STDOUT, rest


def demux_all(data: bytes) -> dict[int, bytes]:
    """Split a complete framed buffer into per-stream bytes (tests and small replies)."""
    out: dict[int, bytes] = {STDOUT: b"", STDERR: b""}
    for sid, payload in Demuxer().feed(data):
        out[sid] = out.get(sid, b"") + payload
    return out
