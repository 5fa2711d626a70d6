"""dockyard-monitor on its own: a forked process spawns an "init" and execs the monitor, as the shim does.

Each test gets the monitor's state dir with a bound shim.sock listener, the
init's stdio (pipes or a pty) and a log; it then talks to shim.sock like the
daemon and checks the log files, exit.json and that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.containers.logs import LogQuery, read_logs
from dockyard.runtime.shim.monitor import monitor_binary
from helpers.hostprobe import rss_kib
from helpers.logwriter import LogWriter

PYTHON = sys.executable
EXIT_RE = re.compile(r'\{"exit_code": (-?\d+), "oom_killed": (true|false), "finished_at": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"\}')


@pytest.fixture(scope="session")
def binary() -> str:
    return monitor_binary()


@dataclass
class Monitor:
    """A running monitor and its init (both this test's processes)."""

    pid: int
    init_pid: int
    state: Path
    log_path: Path
    exit_code: int | None = None
    peers: list[socket.socket] = field(default_factory=list)

    def connect(self, cmd: dict[str, object]) -> tuple[socket.socket, dict[str, object]]:
        """Send one command; returns the connection (positioned after the reply line) and the reply."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(self.state / "shim.sock"))
        sock.sendall(json.dumps(cmd).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n"):
            byte = sock.recv(1)
            if not byte:
                break
            line += byte
        return sock, json.loads(line)

    def request(self, cmd: dict[str, object]) -> dict[str, object]:
        sock, reply = self.connect(cmd)
        assert sock.recv(1) == b"", "the monitor closes after a one-shot reply"
        sock.close()
        return reply

    def wait(self, timeout: float = 15) -> int:
        """The monitor's own exit status (it must exit by itself)."""
        deadline = time.monotonic() + timeout
        while self.exit_code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise AssertionError(f"monitor still running; its log: {self.diagnostics()}")
            else:
                time.sleep(0.01)
        return self.exit_code

    def exit_json(self) -> dict[str, object]:
        text = (self.state / "exit.json").read_text()
        assert EXIT_RE.fullmatch(text), text
        return json.loads(text)

    def diagnostics(self) -> str:
        try:
            return (self.state / "monitor.log").read_text()
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        for pid in (self.init_pid, self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.exit_code is None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.exit_code = -9
        for peer in self.peers:
            peer.close()


@pytest.fixture
def spawn(binary: str, tmp_path: Path) -> Iterator[object]:
    started: list[Monitor] = []

    def start(
        init: list[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        stdin_once: bool = False,
        driver: str = "json-file",
        max_size: int = 0,
        max_file: int = 1,
        attach: str | None = None,
        oom: str | None = None,
        seed_log: bytes | None = None,
    ) -> Monitor:
        state = tmp_path / f"state{len(started)}"
        state.mkdir()
        log_path = state / "container.log"
        if seed_log is not None:
            log_path.write_bytes(seed_log)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(state / "shim.sock"))
        listener.listen(64)
        ours: list[int] = [listener.fileno()]  # fds the monitor gets; the test closes its copies
        child_stdio: list[int] = []
        args = ["--state-dir", str(state), "--listen-fd", str(listener.fileno()), "--log-driver", driver]
        if driver != "none":
            args += ["--log-path", str(log_path), "--log-max-size", str(max_size), "--log-max-file", str(max_file)]
        if tty:
            master, slave = os.openpty()
            ours.append(master)
            child_stdio = [slave, slave, slave]
            args += ["--pty-fd", str(master)]
        else:
            if stdin:
                r, w = os.pipe()
                ours.append(w)
                args += ["--stdin-fd", str(w)]
            else:
                r = os.open(os.devnull, os.O_RDONLY)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            ours += [out_r, err_r]
            child_stdio = [r, out_w, err_w]
            args += ["--stdout-fd", str(out_r), "--stderr-fd", str(err_r)]
        if stdin_once:
            args.append("--stdin-once")
        if oom is not None:
            (state / "memory.events").write_text(oom)
            args += ["--oom-file", str(state / "memory.events")]
        peer = None
        if attach is not None:
            peer, theirs = socket.socketpair()
            ours.append(theirs.detach())
            args += ["--attach", f"{ours[-1]}:{attach}"]
        pid_r, pid_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the shim's part: spawn the init as our child, then become the monitor
            try:
                os.close(pid_r)
                init_pid = _spawn_init(init, child_stdio, tty)
                os.write(pid_w, str(init_pid).encode())
                (state / "shim.pid").write_text(str(os.getpid()))
                log = os.open(state / "monitor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(log, 2)
                for fd in ours:
                    os.set_inheritable(fd, True)
                os.execv(binary, [binary, *args[:4], "--init-pid", str(init_pid), *args[4:]])
            finally:
                os._exit(127)
        os.close(pid_w)
        init_pid = int(os.read(pid_r, 64) or b"0")
        os.close(pid_r)
        for fd in set(ours[1:] + child_stdio):
            os.close(fd)
        listener.close()
        mon = Monitor(pid, init_pid, state, log_path)
        if peer is not None:
            mon.peers.append(peer)
        started.append(mon)
        assert init_pid > 0
        return mon

    yield start
    for mon in started:
        mon.kill()
        for pid in (mon.pid, mon.init_pid):
            assert not os.path.exists(f"/proc/{pid}") or _is_zombie_of_other(pid), f"process {pid} left"


def _is_zombie_of_other(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def _spawn_init(init: list[str], stdio: list[int], tty: bool) -> int:
    """Fork+exec the init with the given stdio (a new session with a controlling tty when there is one)."""
    pid = os.fork()
    if pid == 0:
        try:
            if tty:
                os.setsid()
                import fcntl
                import termios

                fcntl.ioctl(stdio[0], termios.TIOCSCTTY, 0)
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            os.execvp(init[0], init)
        finally:
            os._exit(127)
    return pid


def _py(code: str) -> list[str]:
    return [PYTHON, "-S", "-c", code]


def _records(path: Path) -> dict[str, list[bytes]]:
    """Lines of a json-file log per stream, the time field blanked (everything else must match byte for byte)."""
    out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    for line in path.read_bytes().splitlines(keepends=True):
        rec = json.loads(line)
        out[rec["stream"]].append(re.sub(rb'"time":"[^"]*"', b'"time":"T"', line))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", rec["time"]), rec["time"]
    return out


def _reference(tmp_path: Path, driver: str, data: dict[str, bytes]) -> Path:
    path = tmp_path / f"reference.{driver}"
    writer = LogWriter(driver, str(path), {"max-size": "-1"})
    for stream, blob in data.items():
        writer.write(stream, blob)
    writer.close()
    return path


def _demux(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while data:
        sid, size = struct.unpack(">BxxxI", data[:8])
        frames.append((sid, data[8 : 8 + size]))
        data = data[8 + size :]
    return frames


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


PAYLOAD = {
    "stdout": b"hello\nworld\n" + b"x" * 40 * 1024 + b"\n\n" + "héllo wörld ✓\n".encode() + b"tab\there \"q\" \\ \x01\x1f\x7f\n",
    "stderr": b"bad \xff\xfe utf8 \xe2\x82 cut \xed\xa0\x80 surrogate \xf0\x9f\x98\x80 ok\n" + b"y" * 20000 + b"no newline",
}
WRITE_PAYLOAD = (
    "import sys;"
    "o=sys.stdout.buffer;e=sys.stderr.buffer;"
    f"o.write({PAYLOAD['stdout']!r});o.flush();e.write({PAYLOAD['stderr']!r});e.flush()"
)


def test_json_file_matches_the_python_writer(spawn, tmp_path: Path) -> None:
    mon = spawn(_py(WRITE_PAYLOAD))
    assert mon.wait() == 0, mon.diagnostics()
    assert mon.exit_json()["exit_code"] == 0
    got = _records(mon.log_path)
    want = _records(_reference(tmp_path, "json-file", PAYLOAD))
    assert got == want
    decoded = b"".join(json.loads(line)["log"].encode() for line in got["stdout"])
    assert decoded == PAYLOAD["stdout"]
    assert len(got["stdout"]) == 8  # hello, world, 16K, 16K, 8K+\n, an empty line, two more
    assert not (mon.state / "shim.sock").exists() and not (mon.state / "shim.pid").exists()


def test_random_bytes_match_the_python_writer(spawn, tmp_path: Path) -> None:
    """Escaping and U+FFFD replacement agree with Python's decoder on arbitrary bytes."""
    import random

    rng = random.Random(7)
    alphabet = bytes(range(256)) + b"\n" * 8 + b"\x80\xbf\xc2\xe0\xed\xef\xf0\xf4\xa0\x9f\x90\x8f" * 4
    blob = bytes(rng.choice(alphabet) for _ in range(120_000))
    blob_path = tmp_path / "blob"
    blob_path.write_bytes(blob)
    mon = spawn(["cat", str(blob_path)])
    assert mon.wait() == 0, mon.diagnostics()
    assert _records(mon.log_path) == _records(_reference(tmp_path, "json-file", {"stdout": blob}))


def test_local_driver_read_back_by_the_daemon_reader(spawn) -> None:
    mon = spawn(_py(WRITE_PAYLOAD), driver="local")
    assert mon.wait() == 0, mon.diagnostics()
    wire = b"".join(read_logs(str(mon.log_path), "local", LogQuery(), False, lambda: False))
    streams: dict[int, bytes] = {1: b"", 2: b""}
    for sid, data in _demux(wire):
        streams[sid] += data
    assert streams == {1: PAYLOAD["stdout"], 2: PAYLOAD["stderr"]}


def test_rotation_keeps_max_file_files(spawn) -> None:
    code = "import sys\nfor i in range(60):\n    sys.stdout.write('line %02d\\n' % i); sys.stdout.flush()"
    mon = spawn(_py(code), max_size=300, max_file=3)
    assert mon.wait() == 0, mon.diagnostics()
    files = sorted(p.name for p in mon.state.iterdir() if p.name.startswith("container.log"))
    assert files == ["container.log", "container.log.1", "container.log.2"]
    lines = []
    for name in ("container.log.2", "container.log.1", "container.log"):
        size = (mon.state / name).stat().st_size
        assert 0 < size <= 300
        lines += [json.loads(line)["log"] for line in (mon.state / name).read_text().splitlines()]
    expected = [f"line {i:02d}\n" for i in range(60)]
    assert lines == expected[-len(lines) :] and len(lines) >= 6


def test_rotation_with_one_file_truncates(spawn) -> None:
    code = "import sys\nfor i in range(20):\n    sys.stdout.write('line %02d\\n' % i); sys.stdout.flush()"
    mon = spawn(_py(code), max_size=120, max_file=1)
    assert mon.wait() == 0, mon.diagnostics()
    assert sorted(p.name for p in mon.state.iterdir() if p.name.startswith("container.log")) == ["container.log"]
    lines = [json.loads(line)["log"] for line in mon.log_path.read_text().splitlines()]
    assert lines and lines[-1] == "line 19\n" and mon.log_path.stat().st_size <= 120


def test_rotation_counts_an_existing_file(spawn) -> None:
    seed = b'{"log":"old\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}\n'
    mon = spawn(["echo", "a line that crosses the limit"], max_size=100, max_file=2, seed_log=seed)
    assert mon.wait() == 0
    assert (mon.state / "container.log.1").read_bytes() == seed
    assert json.loads(mon.log_path.read_bytes())["log"] == "a line that crosses the limit\n"


def test_attach_stream_framing_stdin_once_and_exit_code(spawn) -> None:
    init = ["/bin/sh", "-c", 'read line; echo "out:$line"; echo "err:$line" >&2; exit 3']
    mon = spawn(init, stdin=True, stdin_once=True)
    waiter, _ = _wait_conn(mon)
    sock, reply = mon.connect({"cmd": "attach", "stdin": True, "stdout": True, "stderr": True})
    assert reply["ok"] is True and reply["log_size"] == 0
    sock.sendall(b"hello\n")
    sock.shutdown(socket.SHUT_WR)
    frames = _demux(_read_all(sock))
    assert sorted(frames) == [(1, b"out:hello\n"), (2, b"err:hello\n")]
    status = json.loads(_read_all(waiter))
    assert status["exit_code"] == 3 and status["oom_killed"] is False
    assert mon.wait() == 0
    assert mon.exit_json() == status


def _wait_conn(mon: Monitor) -> tuple[socket.socket, None]:
    """A waiting connection, registered: a status round trip after it proves the monitor read it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(mon.state / "shim.sock"))
    sock.sendall(b'{"cmd": "wait"}\n')
    mon.request({"cmd": "status"})
    return sock, None


def test_cat_echoes_stdin_and_eof_ends_it(spawn) -> None:
    mon = spawn(["cat"], stdin=True, stdin_once=True, driver="none")
    sock, reply = mon.connect({"cmd": "attach", "stdin": True, "stdout": True})
    assert reply == {"ok": True, "log_size": -1}
    blob = os.urandom(300_000)  # more than a pipe holds: exercises queued stdin and output
    sock.sendall(blob)
    sock.shutdown(socket.SHUT_WR)
    out = b"".join(data for sid, data in _demux(_read_all(sock)) if sid == 1)
    assert out == blob
    assert mon.wait() == 0
    assert mon.exit_json()["exit_code"] == 0


def test_without_stdin_once_a_client_eof_keeps_stdin_open(spawn) -> None:
    mon = spawn(["cat"], stdin=True)
    sock, _ = mon.connect({"cmd": "attach", "stdin": True, "stdout": True})
    sock.sendall(b"one\n")
    sock.shutdown(socket.SHUT_WR)
    assert _demux(sock.recv(100)) == [(1, b"one\n")]
    time.sleep(0.2)
    assert mon.request({"cmd": "status"})["running"] is True
    os.kill(mon.init_pid, signal.SIGKILL)
    assert _read_all(sock) == b""
    assert mon.wait() == 0
    assert mon.exit_json()["exit_code"] == 137


def test_tty_raw_stream_and_resize(spawn) -> None:
    mon = spawn(["/bin/sh", "-c", "read x; stty size; exit 0"], tty=True)
    assert mon.request({"cmd": "resize", "h": 33, "w": 77}) == {"ok": True}
    sock, reply = mon.connect({"cmd": "attach", "stdin": True, "stdout": True, "stderr": True})
    assert reply["ok"] is True
    sock.sendall(b"go\n")
    out = _read_all(sock)
    assert b"33 77\r\n" in out and not out.startswith(b"\x01\x00\x00\x00")
    assert mon.wait() == 0
    logged = b"".join(json.loads(line)["log"].encode() for line in mon.log_path.read_bytes().splitlines())
    assert b"33 77" in logged
    assert all(json.loads(line)["stream"] == "stdout" for line in mon.log_path.read_bytes().splitlines())


def test_commands_status_unknown_bad_and_signal_exit(spawn) -> None:
    mon = spawn(["sleep", "60"], oom="oom 0\noom_kill 2\n")
    assert mon.request({"cmd": "status"}) == {"ok": True, "pid": mon.init_pid, "running": True, "execs": {}}
    assert mon.request({"cmd": "exec", "id": "x"}) == {"ok": False, "error": "unknown command 'exec'"}
    assert mon.request({"cmd": "signal", "sig": 9}) == {"ok": False, "error": "unknown command 'signal'"}
    assert mon.request({"nocmd": 1}) == {"ok": False, "error": "unknown command None"}
    assert mon.request({"cmd": "resize", "h": 1, "w": 1}) == {
        "ok": False, "error": "no tty to resize", "kind": "state"}
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.connect(str(mon.state / "shim.sock"))
    raw.sendall(b"{not json\n")
    assert json.loads(_read_all(raw)) == {"ok": False, "error": "bad command"}
    raw.close()
    waiter, _ = _wait_conn(mon)
    os.kill(mon.init_pid, signal.SIGTERM)
    status = json.loads(_read_all(waiter))
    assert status["exit_code"] == 128 + signal.SIGTERM and status["oom_killed"] is True
    assert mon.wait() == 0
    assert mon.exit_json() == status
    assert not (mon.state / "shim.sock").exists() and not (mon.state / "shim.pid").exists()


def test_wait_after_exit_and_attach_refused(spawn) -> None:
    mon = spawn(["/bin/sh", "-c", "exec sleep 30"], attach="o")
    mon.peers[0].settimeout(10)
    waiter, _ = _wait_conn(mon)
    os.kill(mon.init_pid, signal.SIGKILL)
    assert json.loads(_read_all(waiter))["exit_code"] == 137
    assert _read_all(mon.peers[0]) == b""  # the pre-bound attach socket is closed at the end
    assert mon.wait() == 0


def test_drain_window_after_the_init_exits(spawn) -> None:
    """An orphan still holding the output delays the end (reaped and ignored); attach is refused meanwhile."""
    mon = spawn(["/bin/sh", "-c", "(sleep 0.7; echo late) & exit 5"])
    deadline = time.monotonic() + 5
    while mon.request({"cmd": "status"})["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert mon.request({"cmd": "attach", "stdout": True}) == {"ok": False, "error": "container is not running"}
    waiter, _ = _wait_conn(mon)
    status = json.loads(_read_all(waiter))
    assert status["exit_code"] == 5
    assert mon.wait() == 0
    assert [json.loads(line)["log"] for line in mon.log_path.read_text().splitlines()] == ["late\n"]


def test_prebound_attach_socket_gets_output(spawn) -> None:
    mon = spawn(["/bin/sh", "-c", "sleep 0.2; echo out; echo err >&2"], attach="e")
    peer = mon.peers[0]
    peer.settimeout(10)
    assert _demux(_read_all(peer)) == [(2, b"err\n")]
    assert mon.wait() == 0


def test_backpressure_bounds_memory_and_loses_nothing(spawn) -> None:
    code = "import sys\nfor i in range(128):\n    sys.stdout.buffer.write(b'%07d' % i + b'.' * 65528 + b'\\n')"
    mon = spawn(_py(code), attach="o")
    peer = mon.peers[0]
    peer.settimeout(10)
    time.sleep(0.5)  # the client reads nothing: the monitor must stop reading the init
    assert rss_kib(mon.pid) < 4096
    assert mon.log_path.stat().st_size < 3 << 20  # of 8 MiB: the log waits with the stream
    got = b"".join(data for _, data in _demux(_read_all(peer)))
    assert got == b"".join(b"%07d" % i + b"." * 65528 + b"\n" for i in range(128))
    assert mon.wait() == 0
    assert len(mon.log_path.read_bytes().splitlines()) == 128 * 4  # 64 KiB lines as four 16 KiB partials


def test_a_client_that_hangs_up_mid_stream_is_dropped(spawn) -> None:
    code = "import sys,time\nfor i in range(50):\n    sys.stdout.write('x' * 10000 + '\\n'); sys.stdout.flush(); time.sleep(0.002)"
    mon = spawn(_py(code))
    sock, reply = mon.connect({"cmd": "attach", "stdout": True})
    assert reply["ok"]
    sock.close()
    assert mon.wait() == 0
    assert mon.exit_json()["exit_code"] == 0
    assert len(mon.log_path.read_bytes().splitlines()) == 50
