"""Reading container logs back for GET /containers/{id}/logs and attach?logs=1.

The container's monitor writes them (``dockyard.runtime.logformat`` defines the formats);
this side reads the rotated set oldest first, filters by stream and time,
keeps the last ``tail`` lines and, with ``follow``, keeps reading the live
file (switching to the new file when the shim rotates) until the container
stops.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dockyard.containers.stdcopy import frame
from dockyard.errors import InvalidParameter, NotImplementedByEngine
from dockyard.runtime.logformat import LOCAL_HEAD, LOCAL_TAIL, STREAM_NAMES, rfc3339_nano

READABLE_DRIVERS = ("json-file", "local")
FOLLOW_POLL = 0.05
_RAW_DECODE = json.JSONDecoder().raw_decode  # skips json.loads' per-call encoding sniffing
BATCH = 64 * 1024  # bytes per chunk handed to the HTTP stream (and per backwards read)


class Record:
    """One logged line; its time is parsed only when a filter needs it (strptime-free, but not free)."""

    __slots__ = ("stream", "line", "_text", "_ns")

    def __init__(self, stream: str, line: bytes, time_text: str | None = None, time_ns: int | None = None) -> None:
        self.stream = stream
        self.line = line
        self._text = time_text
        self._ns = time_ns

    @property
    def time_ns(self) -> int:
        if self._ns is None:
            self._ns = rfc3339_to_ns(self._text or "")
        return self._ns

    @property
    def time_text(self) -> str:
        if self._text is None:
            self._text = rfc3339_nano(self._ns or 0)
        return self._text


@dataclass
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0
    until_ns: int = 0  # 0: no upper bound
    tail: int = -1  # -1: all
    follow: bool = False
    timestamps: bool = False
    live_limit: int = -1  # read the live file only up to this offset (attach's replay boundary)


def check_readable(driver: str) -> None:
    if driver not in READABLE_DRIVERS:
        raise NotImplementedByEngine("configured logging driver does not support reading")


def parse_time(value: str | None) -> int:
    """since/until as docker accepts them: unix seconds with optional fraction, or RFC3339; → ns."""
    if not value:
        return 0
    text = value.strip()
    try:
        if "." in text:
            whole, frac = text.split(".", 1)
            return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
        return int(text) * 1_000_000_000
    except ValueError:
        pass
    try:
        return rfc3339_to_ns(text)
    except ValueError:
        raise InvalidParameter(f"invalid time value: {value}") from None


def rfc3339_to_ns(text: str) -> int:
    """'2026-01-02T03:04:05.123456789Z' (or with ±hh:mm) → ns since the epoch."""
    offset = 0
    if text.endswith("Z"):
        text = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        sign = 1 if text[-6] == "+" else -1
        offset = sign * (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60)
        text = text[:-6]
    frac_ns = 0
    if "." in text:
        text, frac = text.split(".", 1)
        frac_ns = int((frac + "000000000")[:9])
    if len(text) != 19 or text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":" or text[16] != ":":
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    fields = (int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19]))
    secs = calendar.timegm(fields + (0, 0, 0)) - offset
    return secs * 1_000_000_000 + frac_ns


def log_files(path: str) -> list[str]:
    """The rotated set oldest first: path.N … path.1, path."""
    directory, base = os.path.split(path)
    rotated = []
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    for name in names:
        if name.startswith(base + ".") and name[len(base) + 1 :].isdigit():
            rotated.append((int(name[len(base) + 1 :]), os.path.join(directory, name)))
    files = [p for _, p in sorted(rotated, reverse=True)]
    if os.path.exists(path):
        files.append(path)
    return files


class _Parser:
    """Turns appended bytes into records for one driver's format."""

    def __init__(self, driver: str) -> None:
        self.driver = driver
        self.buf = bytearray()

    def feed(self, data: bytes) -> Iterator[Record]:
        self.buf += data
        if self.driver == "json-file":
            nl = self.buf.rfind(b"\n")
            if nl < 0:
                return
            lines = bytes(self.buf[:nl]).decode("utf-8", "replace").split("\n")
            del self.buf[: nl + 1]
            decode = _RAW_DECODE
            for raw in lines:
                try:
                    rec = decode(raw)[0]
                    yield Record(rec["stream"], rec["log"].encode(), time_text=rec["time"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn or foreign line: skip it like docker does
        else:
            while len(self.buf) >= LOCAL_HEAD.size:
                sid, ns, size = LOCAL_HEAD.unpack_from(self.buf)
                total = LOCAL_HEAD.size + size + LOCAL_TAIL.size
                if len(self.buf) < total:
                    break
                line = bytes(self.buf[LOCAL_HEAD.size : LOCAL_HEAD.size + size])
                del self.buf[:total]
                yield Record(STREAM_NAMES.get(sid, "stdout"), line, time_ns=ns)

    def reset(self) -> None:
        self.buf.clear()


def _wanted(rec: Record, q: LogQuery) -> bool:
    if rec.stream == "stdout" and not q.stdout or rec.stream == "stderr" and not q.stderr:
        return False
    if q.since_ns and rec.time_ns < q.since_ns:
        return False
    return not (q.until_ns and rec.time_ns > q.until_ns)


def encode(rec: Record, q: LogQuery, tty: bool) -> bytes:
    data = rec.line
    if q.timestamps:
        data = rec.time_text.encode() + b" " + data
    return data if tty else frame(rec.stream, data)


def read_logs(
    path: str, driver: str, q: LogQuery, tty: bool, is_running: Callable[[], bool]
) -> Iterator[bytes]:
    """The log as wire chunks (framed unless ``tty``); with ``follow`` until the container stops.

    The files are opened here, at the call, not at the first read: a client that removes the container
    right after asking for its logs (docker-py's ``run`` does, before reading them) still gets them all.
    """
    check_readable(driver)
    opened: dict[str, int] = {}
    for name in log_files(path):
        try:
            opened[name] = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
    return _read_logs(path, driver, q, tty, is_running, opened)


def _open_log(name: str, opened: dict[str, int]) -> int:
    fd = opened.pop(name, None)
    return fd if fd is not None else os.open(name, os.O_RDONLY | os.O_CLOEXEC)


def _read_logs(path: str, driver: str, q: LogQuery, tty: bool, is_running: Callable[[], bool],
               opened: dict[str, int]) -> Iterator[bytes]:
    try:
        yield from _read_opened(path, driver, q, tty, is_running, opened)
    finally:
        for fd in opened.values():
            os.close(fd)


def _read_opened(path: str, driver: str, q: LogQuery, tty: bool, is_running: Callable[[], bool],
                 opened: dict[str, int]) -> Iterator[bytes]:
    parser = _Parser(driver)
    live_fd: int | None = None
    if q.tail >= 0 and driver == "json-file" and q.live_limit < 0:
        records, live_fd = _tail_json(path, q, opened)
        out = b"".join(encode(rec, q, tty) for rec in records)
        if out:
            yield out
    else:
        kept: deque[Record] | None = deque(maxlen=q.tail) if q.tail >= 0 else None
        batch = bytearray()
        for name in log_files(path):
            try:
                fd = _open_log(name, opened)
            except FileNotFoundError:
                continue
            try:
                parser.reset()
                left = q.live_limit if name == path and q.live_limit >= 0 else -1
                while data := os.read(fd, 1 << 16 if left < 0 else min(1 << 16, left)):
                    if left >= 0:
                        left -= len(data)
                    for rec in parser.feed(data):
                        if kept is not None:
                            kept.append(rec)  # tail counts every line, filters apply after
                        elif _wanted(rec, q):
                            batch += encode(rec, q, tty)
                    if len(batch) >= BATCH:
                        yield bytes(batch)
                        batch.clear()
            finally:
                if name == path and q.follow:
                    live_fd = fd
                else:
                    os.close(fd)
        if kept:
            batch += b"".join(encode(rec, q, tty) for rec in kept if _wanted(rec, q))
        if batch:
            yield bytes(batch)
    if not q.follow:
        return
    parser.reset()
    yield from _follow(path, live_fd, parser, q, tty, is_running)


def _tail_json(path: str, q: LogQuery, opened: dict[str, int]) -> tuple[list[Record], int | None]:
    """The last ``q.tail`` wanted records, read backwards from the newest file (no full parse of big logs).

    With ``follow`` also returns the live file's fd positioned after its last
    complete line, where following continues.
    """
    found: list[Record] = []  # newest first
    live_fd: int | None = None
    for name in reversed(log_files(path)):
        try:
            fd = _open_log(name, opened)
        except FileNotFoundError:
            continue
        keep_open = name == path and q.follow
        try:
            end = _last_line_end(fd)
            if keep_open:
                os.lseek(fd, end, os.SEEK_SET)
                live_fd = fd
            if len(found) < q.tail:
                _scan_backwards(fd, end, q, found)
        finally:
            if not keep_open:
                os.close(fd)
    found.reverse()
    return [rec for rec in found if _wanted(rec, q)], live_fd


def _last_line_end(fd: int) -> int:
    """Offset just past the file's last newline (a line still being written is not ours yet)."""
    pos = os.fstat(fd).st_size
    while pos > 0:
        n = min(BATCH, pos)
        chunk = os.pread(fd, n, pos - n)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            return pos - n + nl + 1
        pos -= n
    return 0


def _scan_backwards(fd: int, end: int, q: LogQuery, found: list[Record]) -> None:
    carry = b""
    pos = end
    while pos > 0 and len(found) < q.tail:
        n = min(BATCH, pos)
        pos -= n
        lines = (os.pread(fd, n, pos) + carry).split(b"\n")
        carry = lines[0] if pos > 0 else b""
        for raw in reversed(lines if pos == 0 else lines[1:]):
            if not raw:
                continue
            try:
                obj = json.loads(raw)
                rec = Record(obj["stream"], obj["log"].encode(), time_text=obj["time"])
            except (ValueError, KeyError):
                continue
            found.append(rec)  # tail counts every line, filters apply after (as docker does)
            if len(found) == q.tail:
                return


def _follow(
    path: str, fd: int | None, parser: _Parser, q: LogQuery, tty: bool, is_running: Callable[[], bool]
) -> Iterator[bytes]:
    """Tail the live file across rotations; stop once the container is not running and all is read."""
    seen: set[int] = set()
    for name in log_files(path)[:-1]:
        try:
            seen.add(os.stat(name).st_ino)
        except FileNotFoundError:
            pass
    if fd is not None:
        seen.add(os.fstat(fd).st_ino)
    try:
        while True:
            running = is_running()
            got = False
            if fd is None:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    parser.reset()
                    seen.add(os.fstat(fd).st_ino)
                except FileNotFoundError:
                    fd = None
            if fd is not None:
                for out in _drain(fd, parser, q, tty):
                    got = True
                    yield out
                try:
                    rotated = os.stat(path).st_ino != os.fstat(fd).st_ino
                except FileNotFoundError:
                    rotated = True
                if rotated:  # the writer moved on: take what it wrote before the rename, then switch
                    yield from _drain(fd, parser, q, tty)
                    seen.add(os.fstat(fd).st_ino)
                    os.close(fd)
                    fd = None
                    yield from _missed_rotations(path, seen, parser, q, tty)
                    continue
            if q.until_ns and time.time_ns() > q.until_ns:
                return
            if not running and not got:
                return
            if not got:
                time.sleep(FOLLOW_POLL)
    finally:
        if fd is not None:
            os.close(fd)


def _drain(fd: int, parser: _Parser, q: LogQuery, tty: bool) -> Iterator[bytes]:
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return
        out = b"".join(encode(r, q, tty) for r in parser.feed(data) if _wanted(r, q))
        if out:
            yield out


def _missed_rotations(path: str, seen: set[int], parser: _Parser, q: LogQuery, tty: bool) -> Iterator[bytes]:
    """Rotated files that appeared and were rotated past between two polls (a burst of output)."""
    fds = []
    for name in log_files(path)[:-1]:  # open them all at once, before the writer renames them again
        try:
            fds.append(os.open(name, os.O_RDONLY | os.O_CLOEXEC))
        except FileNotFoundError:
            continue
    try:
        for fd in fds:
            ino = os.fstat(fd).st_ino
            if ino in seen:
                continue
            seen.add(ino)
            parser.reset()
            yield from _drain(fd, parser, q, tty)
    finally:
        for fd in fds:
            os.close(fd)
        parser.reset()
