"""The exec shim: serves one process exec'd into a running container, for as long as it runs.

The container's own shim is the native monitor (``native/monitor.c``), which
serves only the init.  Each exec gets this short-lived Python process instead,
forked from the daemon's pre-warmed launcher into its own session: it is the
exec'd process's subreaper, so it alone learns the exit status, it relays the
process's stdio over the stream socket the daemon handed it, and it answers on
``exec-<id>.sock`` in the container's state dir: wait, resize and status of ``protocol.py``.

The first line on the stream socket is ``{"ok": true, "pid": n}`` (or the
error), then the stream: docker's 8-byte multiplexed frames unless the process
has a TTY; a half-close from the client is stdin EOF.  Before it leaves, the
shim writes ``exec-<id>.json`` so a wait that comes too late still learns the
exit code.  Everything runs on one thread around ``poll``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios
import time

from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.shim.proc import Client, Proc, bind_relative, close_fd, frame, spawn_with_stdio
from dockyard.runtime.shim.protocol import RESIZE, STATUS, WAIT, exec_names

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from typing import Any

    from dockyard.runtime.api import OCIRuntime

HIGH_WATER = 1 << 20  # stop reading a producer while a consumer has this much queued
FLUSH_BEFORE_QUIT = 5.0  # seconds given to slow readers before the shim exits


class ExecShim:
    """The event loop for one exec'd process and everything it owns."""

    def __init__(self, cfg: dict[str, Any], runtime: OCIRuntime) -> None:
        self.cfg = cfg
        self.cid: str = cfg["container_id"]
        self.exec_id: str = cfg["exec_id"]
        self.sock_name, self.exit_name = exec_names(self.exec_id)
        self.runtime = runtime
        self.listener: socket.socket | None = None
        self.clients: dict[int, Client] = {}
        self.proc = Proc(self.exec_id, bool(cfg.get("tty")), True)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.finished = False
        self.quit_deadline: float | None = None

    # -- setup ---------------------------------------------------------
    def listen(self) -> None:
        """Bind the exec's socket by relative name (state dirs can be longer than a sun_path)."""
        os.chdir(self.cfg["state_dir"])
        try:
            os.unlink(self.exit_name)
        except FileNotFoundError:
            pass
        self.listener = bind_relative(self.sock_name, 16, 0o600)
        self.listener.setblocking(False)

    def spawn(self) -> int:
        """Run the runtime's exec with our stdio ends; raises OCIRuntimeError."""
        process = dict(self.cfg["process"])
        process["terminal"] = self.proc.tty
        return spawn_with_stdio(
            self.proc, bool(self.cfg.get("stdin")), f"console-{self.exec_id[:12]}.sock",
            lambda stdio, console: self.runtime.exec(self.cid, process, stdio=stdio, console_socket=console),
        )

    # -- streams -------------------------------------------------------
    def bind_stream(self, client: Client) -> None:
        cfg, proc = self.cfg, self.proc
        client.proc = proc
        client.streaming = True
        client.stdin = bool(cfg.get("stdin")) and proc.stdin_fd is not None
        client.want = frozenset(s for s in ("stdout", "stderr") if cfg.get(s))
        proc.clients.append(client)
        self.clients[client.fd] = client

    def _stdin_eof(self, client: Client) -> None:
        proc = self.proc
        client.reading = False
        if not client.stdin:
            return
        proc.stdin_closing = True
        if not proc.stdin_buf:
            proc.close_stdin()

    def _output(self, stream: str, data: bytes) -> None:
        for client in self.proc.clients:
            if stream in client.want and not client.close_after_flush:
                client.queue(data if self.proc.tty else frame(stream, data))

    def _output_eof(self, fd: int) -> None:
        proc = self.proc
        del proc.outputs[fd]
        if fd == proc.master:
            proc.master = None
            proc.stdin_fd = None
        close_fd(fd)

    # -- commands ------------------------------------------------------
    def _command(self, client: Client, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        proc = self.proc
        try:
            if name == WAIT:
                if self.finished:
                    client.reply({"exit_code": proc.exit_code}, close=True)
                else:
                    proc.waiters.append(client)
                    client.reading = False
            elif name == RESIZE:
                if proc.master is None:
                    raise OCIRuntimeError("no tty to resize", "state")
                winsize = struct.pack("HHHH", int(cmd["h"]), int(cmd["w"]), 0, 0)
                fcntl.ioctl(proc.master, termios.TIOCSWINSZ, winsize)
                client.reply({"ok": True}, close=True)
            elif name == STATUS:
                client.reply({"ok": True, "pid": proc.pid, "running": proc.exit_code is None}, close=True)
            else:
                client.reply({"ok": False, "error": f"unknown command {name!r}"}, close=True)
        except OCIRuntimeError as exc:
            client.reply({"ok": False, "error": exc.message, "kind": exc.kind}, close=True)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            client.reply({"ok": False, "error": str(exc), "kind": "other"}, close=True)

    # -- reaping -------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.proc.pid:
                code = os.waitstatus_to_exitcode(status)
                self.proc.exit_code = 128 - code if code < 0 else code

    def _finish(self) -> None:
        """The process is gone and its output drained: record, tell everyone, stop listening."""
        self.finished = True
        proc = self.proc
        proc.close_stdin()
        status = {"exit_code": proc.exit_code}
        try:  # tmp + rename: a late waiter reads a whole file or none
            with open(self.exit_name + ".tmp", "w") as fh:
                fh.write(json.dumps(status))
            os.rename(self.exit_name + ".tmp", self.exit_name)
        except OSError as exc:  # the waiters still hear it
            os.write(2, f"{self.exit_name}: {exc}\n".encode())
        for waiter in proc.waiters:
            waiter.reply(status, close=True)
        proc.waiters.clear()
        for client in proc.clients:
            client.close_after_flush = True
        proc.clients.clear()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        try:
            os.unlink(self.sock_name)
        except OSError:
            pass
        self.quit_deadline = time.monotonic() + FLUSH_BEFORE_QUIT

    # -- the loop ------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.set_inheritable(False)
            client = Client(sock)
            self.clients[client.fd] = client

    def _read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if client.streaming:
            if not data:
                self._stdin_eof(client)
            elif client.stdin and self.proc.stdin_fd is not None:
                self.proc.stdin_buf += data
            return
        if not data:
            self._drop(client)
            return
        client.inbuf += data
        nl = client.inbuf.find(b"\n")
        if nl < 0:
            if len(client.inbuf) > 1 << 20:
                self._drop(client)
            return
        line = bytes(client.inbuf[:nl])
        del client.inbuf[: nl + 1]
        try:
            cmd = json.loads(line)
        except ValueError:
            client.reply({"ok": False, "error": "bad command"}, close=True)
            return
        client.reading = False
        self._command(client, cmd)

    def _write_client(self, client: Client) -> None:
        try:
            n = client.sock.send(client.outbuf)
        except BlockingIOError:
            return
        except OSError:
            self._drop(client)
            return
        del client.outbuf[:n]
        if not client.outbuf and client.close_after_flush:
            self._drop(client)

    def _drop(self, client: Client) -> None:
        self.clients.pop(client.fd, None)
        proc = self.proc
        if client in proc.clients:
            proc.clients.remove(client)
            if client.stdin and client.reading:
                self._stdin_eof(client)
        if client in proc.waiters:
            proc.waiters.remove(client)
        try:
            client.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.sock.close()

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO on a pty master once the slave side is gone
            if exc.errno != errno.EIO:
                os.write(2, f"read output: {exc}\n".encode())
            data = b""
        if data:
            self._output(self.proc.outputs[fd], data)
        else:
            self._output_eof(fd)

    def _write_stdin(self) -> None:
        proc = self.proc
        assert proc.stdin_fd is not None
        try:
            n = os.write(proc.stdin_fd, proc.stdin_buf)
        except BlockingIOError:
            return
        except OSError:
            proc.stdin_buf.clear()
            proc.close_stdin()
            return
        del proc.stdin_buf[:n]
        if not proc.stdin_buf and proc.stdin_closing:
            proc.close_stdin()

    def _poller(self) -> select.poll:
        proc = self.proc
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        if self.listener is not None:
            poller.register(self.listener.fileno(), select.POLLIN)
        events: dict[int, int] = {}
        if not any(len(c.outbuf) > HIGH_WATER for c in proc.clients):
            for fd in proc.outputs:
                events[fd] = select.POLLIN
        if proc.stdin_fd is not None and proc.stdin_buf:
            events[proc.stdin_fd] = events.get(proc.stdin_fd, 0) | select.POLLOUT
        for fd, ev in events.items():
            poller.register(fd, ev)
        for client in self.clients.values():
            ev = 0
            if client.reading and len(proc.stdin_buf) <= HIGH_WATER:
                ev |= select.POLLIN
            if client.outbuf:
                ev |= select.POLLOUT
            if ev:
                poller.register(client.fd, ev)
        return poller

    def run(self) -> None:
        """Serve until the process has exited, its output is drained and every reader got its bytes."""
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self._reap()
        while True:
            if not self.finished and self.proc.exit_code is not None and not self.proc.outputs:
                self._finish()
            if self.finished:
                pending = [c for c in self.clients.values() if c.outbuf]
                if not pending or (self.quit_deadline is not None and time.monotonic() > self.quit_deadline):
                    return
            for client in [c for c in self.clients.values() if c.close_after_flush and not c.outbuf]:
                self._drop(client)
            try:
                ready = self._poller().poll(200 if self.finished else -1)
            except InterruptedError:
                continue
            for fd, ev in ready:
                try:
                    self._dispatch(fd, ev)
                except Exception:  # noqa: BLE001 - a bug in one event must not lose the exit status
                    import traceback

                    os.write(2, traceback.format_exc().encode())
                    failed = self.clients.get(fd)
                    if failed is not None:
                        self._drop(failed)
            self._reap()

    def _dispatch(self, fd: int, ev: int) -> None:
        """One ready fd: the SIGCHLD wake-up, a new connection, the process's stdio or a client."""
        proc = self.proc
        if fd == self.wake_r:
            try:
                os.read(self.wake_r, 4096)
            except BlockingIOError:
                pass
            self._reap()
        elif self.listener is not None and fd == self.listener.fileno():
            self._accept()
        elif fd in self.clients:
            client = self.clients[fd]
            if ev & select.POLLOUT:
                self._write_client(client)
            if fd in self.clients and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                if client.reading:
                    self._read_client(client)
                elif ev & (select.POLLHUP | select.POLLERR):
                    self._drop(client)
        else:
            if fd in proc.outputs and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read_output(fd)
            if ev & select.POLLOUT and proc.stdin_fd == fd:
                self._write_stdin()
            elif ev & (select.POLLERR | select.POLLHUP) and proc.stdin_fd == fd and fd not in proc.outputs:
                proc.stdin_buf.clear()
                proc.close_stdin()


def serve_exec(cfg: dict[str, Any], stream: socket.socket) -> None:
    """Body of the forked exec shim (already in its own session): exec the process and serve it."""
    from dockyard.runtime.api import get_runtime
    from dockyard.sys.linux import set_child_subreaper

    set_child_subreaper()
    shim = ExecShim(cfg, get_runtime(cfg["runtime"], cfg["runtime_root"]))
    client = Client(stream)
    try:
        shim.listen()
        pid = shim.spawn()
    except BaseException as exc:  # noqa: BLE001 - the daemon hears of every failure
        kind = exc.kind if isinstance(exc, OCIRuntimeError) else "other"
        message = exc.message if isinstance(exc, OCIRuntimeError) else f"exec: {exc!r}"
        if shim.listener is not None:
            shim.listener.close()
            try:
                os.unlink(shim.sock_name)
            except OSError:
                pass
        stream.setblocking(True)
        try:
            stream.sendall(json.dumps({"ok": False, "error": message, "kind": kind}).encode() + b"\n")
        except OSError:
            pass
        os._exit(1)
    client.reply({"ok": True, "pid": pid})
    shim.bind_stream(client)
    os.chdir("/")
    shim.sock_name = os.path.join(cfg["state_dir"], shim.sock_name)
    shim.exit_name = os.path.join(cfg["state_dir"], shim.exit_name)
    shim.run()
    os._exit(0)
