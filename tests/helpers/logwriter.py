"""A Python model of the log writer in ``native/logwriter.c``: the same records, rotation and partial lines.

Tests use it to make log files for the daemon's reader and as the reference
the native writer's output is compared with byte for byte (time aside).
"""

from __future__ import annotations

import os
import time
from json.encoder import encode_basestring as _encode_str

from dockyard.runtime.logformat import (
    LOCAL_HEAD,
    LOCAL_TAIL,
    MAX_LINE,
    STREAM_CODES,
    rfc3339_nano,
    rotation_limits,
)


class RotatingFile:
    """An append-only file rotated to path.1 … path.N-1 before it would pass max_size."""

    def __init__(self, path: str, max_size: int, max_file: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, data: bytes) -> None:
        if self.max_size and self.size and self.size + len(data) > self.max_size:
            self.rotate()
        os.write(self.fd, data)
        self.size += len(data)

    def rotate(self) -> None:
        os.close(self.fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 1, -1):
                older = f"{self.path}.{n - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{n}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = 0

    def close(self) -> None:
        os.close(self.fd)


class LogWriter:
    """Splits a stream into lines and hands each to the driver's record encoder."""

    def __init__(self, driver: str, path: str, opts: dict[str, str]) -> None:
        self.driver = driver
        self.file: RotatingFile | None = None
        if driver in ("json-file", "local"):
            max_size, max_file = rotation_limits(opts)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self.file = RotatingFile(path, max_size, max_file)
        self._pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def write(self, stream: str, data: bytes) -> None:
        """Append output; complete lines (and overlong partial ones) are logged at once.

        All lines of one read share one timestamp and one write(2): per-line
        syscalls and clock formatting would make a chatty container crawl.
        """
        if self.file is None:
            return
        buf = self._pending[stream]
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        nl = data.rfind(b"\n")
        complete, rest = (b"", data) if nl < 0 else (data[: nl + 1], data[nl + 1 :])
        pieces: list[bytes] = []
        if complete:
            for line in complete.split(b"\n")[:-1]:
                if len(line) < MAX_LINE:
                    pieces.append(line + b"\n")
                else:  # docker logs an overlong line as 16 KiB partial messages
                    chunks = [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]
                    chunks[-1] += b"\n"
                    pieces.extend(chunks)
        while len(rest) >= MAX_LINE:
            pieces.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        buf += rest
        if pieces:
            self._emit(stream, pieces)

    def flush(self) -> None:
        """Log what is left without a newline (end of the container's output)."""
        for stream, buf in self._pending.items():
            if buf:
                self._emit(stream, [bytes(buf)])
                buf.clear()

    def _emit(self, stream: str, pieces: list[bytes]) -> None:
        assert self.file is not None
        now = time.time_ns()
        records = [self._encode(stream, p, now) for p in pieces] if self.driver != "json-file" else None
        if records is None:
            tail = f',"stream":"{stream}","time":"{rfc3339_nano(now)}"}}\n'
            records = [
                ('{"log":' + _encode_str(p.decode("utf-8", "replace")) + tail).encode() for p in pieces
            ]
        blob = b"".join(records)
        f = self.file
        if f.max_size and f.size + len(blob) > f.max_size:
            for rec in records:  # crossing the size limit: rotate between records
                f.write(rec)
        else:
            f.write(blob)

    def _encode(self, stream: str, line: bytes, now: int) -> bytes:
        return LOCAL_HEAD.pack(STREAM_CODES[stream], now, len(line)) + line + LOCAL_TAIL.pack(len(line))

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()
            self.file = None
