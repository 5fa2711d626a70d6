"""The per-container shim: holds the container's stdio, serves attach/exec/signal, reaps, records the exit.

One shim per running container, detached from the daemon (own session,
reparented to init) so the container outlives a daemon crash.  It is the
container's subreaper: the init and every exec'd process end up as its
children, so it alone learns their exit statuses.  Output goes to the log
driver and to attached clients; the daemon talks to it over ``shim.sock`` in
the container's state dir with one JSON line per connection::

    {"cmd": "attach", "stdin": b, "stdout": b, "stderr": b}    -> {"ok": true} then the raw stream
    {"cmd": "exec", "id": s, "process": {...}, "tty": b, "stdin": b, "stdout": b, "stderr": b}
                                                               -> {"ok": true, "pid": n} then the stream
    {"cmd": "wait"} / {"cmd": "wait", "exec": id}              -> the exit status, once there is one
    {"cmd": "signal", "sig": n, "all": b}, {"cmd": "resize", "h": n, "w": n[, "exec": id]}, {"cmd": "status"}

Streams carry docker's 8-byte multiplexed frames unless the process has a
TTY; a half-close from the client is stdin EOF.  After the init exits the
shim drains the output, reads the OOM count, runs the runtime's ``delete``,
writes ``exit.json`` atomically, answers the waiters, flushes the streams
and exits.  Everything runs on one thread around ``poll``.
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
from dockyard.runtime.shim_logs import LogWriter, rfc3339_nano
from dockyard.runtime.shim_proc import (
    Client,
    Proc,
    close_fd,
    console_listener,
    frame,
    in_helper,
    receive_master,
    stdio_pipes,
)

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from typing import Any

    from dockyard.runtime.api import OCIRuntime

SOCKET_NAME = "shim.sock"
PID_NAME = "shim.pid"
EXIT_NAME = "exit.json"
LOG_NAME = "shim.log"

HIGH_WATER = 1 << 20  # stop reading a producer while a consumer has this much queued
DRAIN_AFTER_EXIT = 2.0  # seconds to wait for output still in flight after the init died
FLUSH_BEFORE_QUIT = 5.0  # seconds given to slow readers before the shim exits


class Shim:
    """The event loop and everything it owns."""

    def __init__(self, cfg: dict[str, Any], runtime: OCIRuntime) -> None:
        self.cfg = cfg
        self.cid: str = cfg["container_id"]
        self.state_dir: str = cfg["state_dir"]
        self.runtime = runtime
        self.listener: socket.socket | None = None
        self.clients: dict[int, Client] = {}
        self.init = Proc(None, bool(cfg.get("tty")), bool(cfg.get("stdin_once")))
        self.procs: dict[int, Proc] = {}  # pid -> proc, for reaping
        self.execs: dict[str, Proc] = {}
        self.orphan_status: dict[int, int] = {}  # reaped before we knew the pid
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.exited_at: float | None = None
        self.finished = False
        self.quit_deadline: float | None = None
        self.exit_status: dict[str, Any] | None = None
        self.log_failed = False

    # -- setup ---------------------------------------------------------
    def listen(self) -> None:
        """Bind shim.sock by relative name (state dirs can be longer than a sun_path)."""
        os.chdir(self.state_dir)
        for name in (SOCKET_NAME, EXIT_NAME):
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.bind(SOCKET_NAME)
        os.chmod(SOCKET_NAME, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        self.listener = sock
        with open(PID_NAME + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.rename(PID_NAME + ".tmp", PID_NAME)

    def create_and_start(self) -> int:
        """Run the runtime's create + start with our stdio; raises OCIRuntimeError."""
        proc = self.init
        cfg = self.cfg
        child_fds: tuple[int, int, int] | None = None
        console: socket.socket | None = None
        if proc.tty:
            console = console_listener("console.sock")
        else:
            child_fds = stdio_pipes(proc, bool(cfg.get("open_stdin")))
        proc.log = LogWriter(cfg.get("log_driver") or "json-file", cfg["log_path"], cfg.get("log_opts") or {})
        def create_and_start() -> int:
            pid = self.runtime.create(
                self.cid,
                cfg["bundle"],
                stdio=child_fds,
                console_socket="console.sock" if console else None,
                pid_file=os.path.join(self.state_dir, "init.pid"),
            )
            self.runtime.start(self.cid)
            return pid

        try:
            pid = in_helper(create_and_start)
            if console is not None:
                receive_master(console, "console.sock", proc)
                console = None
        finally:
            if console is not None:
                console.close()
            for fd in child_fds or ():
                close_fd(fd)
        proc.pid = pid
        self.procs[pid] = proc
        for sock, flags in zip(self.cfg.get("_attach_socks", []), cfg.get("attach") or [], strict=False):
            self._bind_stream(Client(sock), proc, flags)
        return pid

    # -- streams -------------------------------------------------------
    def _bind_stream(self, client: Client, proc: Proc, flags: dict[str, Any]) -> None:
        client.proc = proc
        client.streaming = True
        client.stdin = bool(flags.get("stdin")) and proc.stdin_fd is not None
        client.want = frozenset(s for s in ("stdout", "stderr") if flags.get(s))
        proc.clients.append(client)
        self.clients[client.fd] = client
        if client.inbuf:
            data = bytes(client.inbuf)
            client.inbuf.clear()
            self._stdin_data(client, data)

    def _stdin_data(self, client: Client, data: bytes) -> None:
        proc = client.proc
        if proc is None or not client.stdin or proc.stdin_fd is None:
            return
        proc.stdin_buf += data

    def _stdin_eof(self, client: Client) -> None:
        proc = client.proc
        client.reading = False
        if proc is None or not client.stdin:
            return
        if proc.stdin_once or proc.exec_id is not None:
            proc.stdin_closing = True
            if not proc.stdin_buf:
                proc.close_stdin()

    def _output(self, proc: Proc, stream: str, data: bytes) -> None:
        if proc.log is not None:
            try:
                proc.log.write(stream, data)
            except OSError as exc:  # a full disk must not stop the container's output
                if not self.log_failed:
                    os.write(2, f"log write failed, dropping log lines: {exc}\n".encode())
                self.log_failed = True
        for client in proc.clients:
            if stream in client.want and not client.close_after_flush:
                client.queue(data if proc.tty else frame(stream, data))

    def _output_eof(self, proc: Proc, fd: int) -> None:
        del proc.outputs[fd]
        if fd == proc.master:
            proc.master = None
            proc.stdin_fd = None
        close_fd(fd)
        self._maybe_finish_proc(proc)

    def _maybe_finish_proc(self, proc: Proc) -> None:
        """An exec'd process is done once it is reaped and its output drained."""
        if proc.exec_id is None or proc.outputs or proc.exit_code is None:
            return
        for client in proc.clients:
            client.close_after_flush = True
        proc.clients.clear()
        self._answer_waiters(proc, {"exit_code": proc.exit_code})
        proc.close_stdin()

    def _answer_waiters(self, proc: Proc, status: dict[str, Any]) -> None:
        for waiter in proc.waiters:
            waiter.reply(status, close=True)
        proc.waiters.clear()

    # -- commands ------------------------------------------------------
    def _command(self, client: Client, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        try:
            if name == "attach":
                if self.exited_at is not None:
                    client.reply({"ok": False, "error": "container is not running"}, close=True)
                    return
                log = self.init.log
                # the log's length right now: what a replay must show before this stream's first byte
                client.reply({"ok": True, "log_size": log.file.size if log and log.file else -1})
                self._bind_stream(client, self.init, cmd)
            elif name == "exec":
                self._exec(client, cmd)
            elif name == "wait":
                proc = self.execs.get(cmd["exec"]) if cmd.get("exec") else self.init
                if proc is None:
                    client.reply({"ok": False, "error": "no such exec"}, close=True)
                elif proc is self.init and self.exit_status is not None:
                    client.reply(self.exit_status, close=True)
                elif proc is not self.init and proc.exit_code is not None and not proc.outputs:
                    client.reply({"exit_code": proc.exit_code}, close=True)
                else:
                    proc.waiters.append(client)
                    self.clients[client.fd] = client
            elif name == "signal":
                if self.exited_at is not None:
                    raise OCIRuntimeError("container not running", "state")
                self.runtime.kill(self.cid, int(cmd["sig"]), bool(cmd.get("all")))
                client.reply({"ok": True}, close=True)
            elif name == "resize":
                proc = self.execs.get(cmd["exec"]) if cmd.get("exec") else self.init
                if proc is None or proc.master is None:
                    raise OCIRuntimeError("no tty to resize", "state")
                winsize = struct.pack("HHHH", int(cmd["h"]), int(cmd["w"]), 0, 0)
                fcntl.ioctl(proc.master, termios.TIOCSWINSZ, winsize)
                client.reply({"ok": True}, close=True)
            elif name == "status":
                client.reply(
                    {
                        "ok": True,
                        "pid": self.init.pid,
                        "running": self.exited_at is None,
                        "execs": {k: {"pid": p.pid, "exit_code": p.exit_code} for k, p in self.execs.items()},
                    },
                    close=True,
                )
            else:
                client.reply({"ok": False, "error": f"unknown command {name!r}"}, close=True)
        except OCIRuntimeError as exc:
            client.reply({"ok": False, "error": exc.message, "kind": exc.kind}, close=True)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            client.reply({"ok": False, "error": str(exc), "kind": "other"}, close=True)

    def _exec(self, client: Client, cmd: dict[str, Any]) -> None:
        if self.exited_at is not None:
            raise OCIRuntimeError(f"container {self.cid} is not running", "state")
        exec_id = str(cmd["id"])
        proc = Proc(exec_id, bool(cmd.get("tty")), True)
        process = dict(cmd["process"])
        process["terminal"] = proc.tty
        name = f"exec-{exec_id[:12]}.sock"
        console = console_listener(name) if proc.tty else None
        child_fds = None if proc.tty else stdio_pipes(proc, bool(cmd.get("stdin")))
        try:
            pid = in_helper(
                lambda: self.runtime.exec(self.cid, process, stdio=child_fds, console_socket=name if console else None)
            )
            if console is not None:
                receive_master(console, name, proc)
                console = None
        except BaseException:
            for fd in list(proc.outputs) + ([proc.stdin_fd] if proc.stdin_fd is not None else []):
                close_fd(fd)
            raise
        finally:
            if console is not None:
                console.close()
            for fd in child_fds or ():
                close_fd(fd)
        proc.pid = pid
        self.execs[exec_id] = proc
        self.procs[pid] = proc
        client.reply({"ok": True, "pid": pid})
        self._bind_stream(client, proc, cmd)
        if pid in self.orphan_status:
            self._reaped(proc, self.orphan_status.pop(pid))

    # -- reaping -------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.procs.pop(pid, None)
            if proc is None:
                self.orphan_status[pid] = status
                if len(self.orphan_status) > 1024:
                    self.orphan_status.pop(next(iter(self.orphan_status)))
                continue
            self._reaped(proc, status)

    def _reaped(self, proc: Proc, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        proc.status = status
        proc.exit_code = 128 - code if code < 0 else code
        if proc is self.init:
            self.exited_at = time.monotonic()
        else:
            self._maybe_finish_proc(proc)

    def _finish_container(self) -> None:
        """The init is gone and its output drained: clean up, record, tell everyone."""
        self.finished = True
        proc = self.init
        for fd in list(proc.outputs):
            close_fd(fd)
        proc.outputs.clear()
        proc.close_stdin()
        if proc.log is not None:
            try:
                proc.log.close()
            except OSError:
                pass
        oom = self._oom_killed()
        try:
            self.runtime.delete(self.cid, force=True)
        except Exception as exc:  # noqa: BLE001 - the exit must be recorded whatever delete thinks
            os.write(2, f"runtime delete: {exc}\n".encode())
        status = {"exit_code": proc.exit_code, "oom_killed": oom, "finished_at": rfc3339_nano(trim=False)}
        # tmp + rename, without fsync: readers never see half a file, and the exit path stays fast
        final = os.path.join(self.state_dir, EXIT_NAME)
        try:
            with open(final + ".tmp", "w") as fh:
                fh.write(json.dumps(status))
            os.rename(final + ".tmp", final)
        except OSError as exc:  # the waiters still hear it
            os.write(2, f"exit.json: {exc}\n".encode())
        self.exit_status = status
        self._answer_waiters(proc, status)
        for client in proc.clients:
            client.close_after_flush = True
        for exec_proc in self.execs.values():
            if exec_proc.exit_code is None:
                exec_proc.exit_code = 137
            self._answer_waiters(exec_proc, {"exit_code": exec_proc.exit_code})
        self.quit_deadline = time.monotonic() + FLUSH_BEFORE_QUIT

    def _oom_killed(self) -> bool:
        try:
            with open(os.path.join(self.cfg["bundle"], "config.json")) as fh:
                path = (json.load(fh).get("linux") or {}).get("cgroupsPath")
            from dockyard.runtime.cgroups import open_cgroup

            return open_cgroup(path, self.cid).oom_kill_count() > 0
        except Exception as exc:  # noqa: BLE001 - a missing cgroup must not lose the exit status
            os.write(2, f"oom check: {exc}\n".encode())
            return False

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
        if not client.streaming and client.proc is None and client not in self._waiting():
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
            if client.streaming:
                client.reading = True
            return
        if not data:
            if client.streaming:
                self._stdin_eof(client)
            else:
                self._drop(client)
            return
        if client.streaming:
            self._stdin_data(client, data)

    def _waiting(self) -> list[Client]:
        out = list(self.init.waiters)
        for proc in self.execs.values():
            out.extend(proc.waiters)
        return out

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
        proc = client.proc
        if proc is not None and client in proc.clients:
            proc.clients.remove(client)
            if client.stdin and client.reading:
                self._stdin_eof(client)
        for p in [self.init, *self.execs.values()]:
            if client in p.waiters:
                p.waiters.remove(client)
        try:
            client.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.sock.close()

    def _backpressured(self, proc: Proc) -> bool:
        return any(len(c.outbuf) > HIGH_WATER for c in proc.clients)

    def _read_output(self, proc: Proc, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO on a pty master once the slave side is gone
            if exc.errno != errno.EIO:
                os.write(2, f"read output: {exc}\n".encode())
            data = b""
        if data:
            self._output(proc, proc.outputs[fd], data)
        else:
            self._output_eof(proc, fd)

    def _write_stdin(self, proc: Proc) -> None:
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

    def run(self) -> None:
        """Serve until the container has exited and every reader got its bytes."""
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self._reap()
        while True:
            now = time.monotonic()
            if self.exited_at is not None and not self.finished:
                if not self.init.outputs or now - self.exited_at > DRAIN_AFTER_EXIT:
                    self._finish_container()
                    self._stop_listening()
            if self.finished:
                pending = [c for c in self.clients.values() if c.outbuf or c in self._waiting()]
                if not pending or (self.quit_deadline is not None and now > self.quit_deadline):
                    return
            poller = select.poll()
            handlers: dict[int, Any] = {self.wake_r: ("wake", None)}
            poller.register(self.wake_r, select.POLLIN)
            if self.listener is not None:
                poller.register(self.listener.fileno(), select.POLLIN)
                handlers[self.listener.fileno()] = ("accept", None)
            for proc in [self.init, *self.execs.values()]:
                events: dict[int, int] = {}
                if not self._backpressured(proc):
                    for fd in proc.outputs:
                        events[fd] = events.get(fd, 0) | select.POLLIN
                if proc.stdin_fd is not None and proc.stdin_buf:
                    events[proc.stdin_fd] = events.get(proc.stdin_fd, 0) | select.POLLOUT
                for fd, ev in events.items():
                    poller.register(fd, ev)
                    handlers[fd] = ("proc", proc)
            for client in [c for c in self.clients.values() if c.close_after_flush and not c.outbuf]:
                self._drop(client)
            for client in self.clients.values():
                ev = 0
                owner = client.proc
                if client.reading and not (owner is not None and len(owner.stdin_buf) > HIGH_WATER):
                    ev |= select.POLLIN
                if client.outbuf:
                    ev |= select.POLLOUT
                if ev:
                    poller.register(client.fd, ev)
                    handlers[client.fd] = ("client", client)
            timeout = 200 if self.exited_at is not None else -1  # idle: sleep until an event
            try:
                ready = poller.poll(timeout)
            except InterruptedError:
                continue
            for fd, ev in ready:
                try:
                    self._dispatch(handlers.get(fd, (None, None)), fd, ev)
                except Exception:  # noqa: BLE001 - a bug in one event must not orphan the container
                    import traceback

                    os.write(2, traceback.format_exc().encode())
                    kind, obj = handlers.get(fd, (None, None))
                    if kind == "client" and obj.fd in self.clients:
                        self._drop(obj)
            self._reap()

    def _dispatch(self, handler: tuple[str | None, Any], fd: int, ev: int) -> None:
        """One ready fd: the SIGCHLD wake-up, a new connection, a process's stdio or a client."""
        kind, obj = handler
        if kind == "wake":
            try:
                os.read(self.wake_r, 4096)
            except BlockingIOError:
                pass
            self._reap()
        elif kind == "accept":
            self._accept()
        elif kind == "proc":
            if fd in obj.outputs and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read_output(obj, fd)
            if ev & select.POLLOUT and obj.stdin_fd == fd:
                self._write_stdin(obj)
            elif ev & (select.POLLERR | select.POLLHUP) and obj.stdin_fd == fd and fd not in obj.outputs:
                obj.stdin_buf.clear()
                obj.close_stdin()
        elif kind == "client":
            if obj.fd not in self.clients:
                return
            if ev & select.POLLOUT:
                self._write_client(obj)
            if obj.fd in self.clients and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                if obj.reading:
                    self._read_client(obj)
                elif ev & (select.POLLHUP | select.POLLERR):
                    self._drop(obj)

    def _stop_listening(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for name in (SOCKET_NAME, PID_NAME):
            try:
                os.unlink(os.path.join(self.state_dir, name))
            except OSError:
                pass


def serve(cfg: dict[str, Any], result: socket.socket, attach_socks: list[socket.socket]) -> None:
    """Body of the forked shim process (already in its own session): start the container and serve it."""
    from dockyard.runtime.linux import set_child_subreaper

    set_child_subreaper()
    os.makedirs(cfg["state_dir"], exist_ok=True)
    log_fd = os.open(
        os.path.join(cfg["state_dir"], LOG_NAME), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
    )
    os.dup2(log_fd, 2)
    os.close(log_fd)
    cfg = dict(cfg, _attach_socks=attach_socks)
    from dockyard.runtime.api import get_runtime

    shim = Shim(cfg, get_runtime(cfg["runtime"], cfg["runtime_root"]))
    try:
        shim.listen()
        pid = shim.create_and_start()
    except BaseException as exc:  # noqa: BLE001 - report every failure to the daemon, leave nothing behind
        kind = exc.kind if isinstance(exc, OCIRuntimeError) else "other"
        message = exc.message if isinstance(exc, OCIRuntimeError) else f"shim: {exc!r}"
        try:
            shim.runtime.delete(shim.cid, force=True)
        except Exception as err:  # noqa: BLE001
            os.write(2, f"runtime delete after a failed start: {err}\n".encode())
        _kill_created_init(os.path.join(shim.state_dir, "init.pid"))
        shim._stop_listening()
        _send_result(result, {"ok": False, "error": message, "kind": kind})
        os._exit(1)
    _send_result(result, {"ok": True, "pid": pid})
    os.chdir("/")
    shim.run()
    os._exit(0)


def _kill_created_init(pid_file: str) -> None:
    """A create that got as far as an init must not leave it waiting on its exec fifo forever."""
    try:
        with open(pid_file) as fh:
            pid = int(fh.read().strip())
        os.unlink(pid_file)
    except (OSError, ValueError):
        return
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return  # already dead (now reaped)
    except ChildProcessError:
        return  # not our child (any more): the pid may belong to someone else now
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _send_result(sock: socket.socket, obj: dict[str, Any]) -> None:
    try:
        sock.setblocking(True)
        sock.sendall(json.dumps(obj).encode() + b"\n")
        sock.close()
    except OSError:
        pass
