"""The daemon's handle on a container's shim: launch, reconnect, exit callback, signal, attach, exec.

Shims are forked by a pre-warmed launcher process (``runtime/shim/launcher``)
that the daemon starts on first use, one per data root; a container's shim
becomes the native monitor once the container runs, and every exec gets an
exec shim of its own from the same launcher.  Every request to a running shim
is one short unix-socket connection to ``<state_dir>/shim.sock`` (or the
exec's ``exec-<id>.sock``), reached through ``/proc/self/fd/<dirfd>/`` because
a state dir path can be longer than a unix socket address allows.  Signals and
the runtime's ``delete`` after the exit are sent from here, by the runtime.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard.containers.exit_watch import WATCHER
from dockyard.runtime.errors import OCIRuntimeError

if TYPE_CHECKING:
    from dockyard.runtime.api import OCIRuntime
from dockyard.runtime.shim import protocol
from dockyard.runtime.shim.protocol import EXIT_NAME, LOG_NAME, PID_NAME, SOCKET_NAME, exec_names

log = logging.getLogger(__name__)

LAUNCH_TIMEOUT = 120.0


@dataclass
class ShimConfig:
    container_id: str
    bundle: str
    state_dir: str
    runtime: str
    runtime_root: str
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    log_path: str = ""


@dataclass
class ExitStatus:
    exit_code: int
    oom_killed: bool
    finished_at: str
    error: str = ""  # why the exit was not the container's own (its monitor died), for State.Error


class ShimError(Exception):
    """The shim refused a request or is gone."""


# -- the launcher ---------------------------------------------------------------------------------
class _Launcher:
    """One pre-warmed launcher process per data root, restarted if it died."""

    def __init__(self, data_root: str) -> None:
        self.data_root = data_root
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.chan: socket.socket | None = None
        self.monitor = ""  # the native monitor's path, found (or built) with the first launcher

    def _start(self) -> None:
        if not self.monitor:
            from dockyard.runtime.shim.monitor import monitor_binary

            self.monitor = monitor_binary()
        self._start_launcher()

    def _start_launcher(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.runtime.shim.launcher", str(theirs.fileno()), self.data_root],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
            )
        self.chan = ours

    def ensure(self) -> None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                if self.chan is not None:
                    self.chan.close()
                self._start()

    def send(self, cfg: dict[str, Any], fds: list[int]) -> None:
        payload = json.dumps(cfg).encode()
        for attempt in (1, 2):
            self.ensure()
            with self.lock:
                assert self.chan is not None
                try:
                    socket.send_fds(self.chan, [payload], fds)
                    return
                except OSError:
                    if attempt == 2:
                        raise
                    if self.proc is not None:
                        self.proc.kill()
                        self.proc.wait()

    def stop(self) -> None:
        """EOF on the channel: the launcher dismisses its spare shim and exits (killed if it takes long)."""
        with self.lock:
            if self.chan is not None:
                self.chan.close()
                self.chan = None
            if self.proc is not None:
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                self.proc = None


_launchers: dict[str, _Launcher] = {}
_launchers_lock = threading.Lock()


def _data_root_of(cfg: ShimConfig) -> str:
    # runtime_root is <data_root>/runtime/<runtime>
    return os.path.dirname(os.path.dirname(os.path.abspath(cfg.runtime_root)))


def launcher_for(data_root: str) -> _Launcher:
    with _launchers_lock:
        launcher = _launchers.get(data_root)
        if launcher is None:
            launcher = _launchers[data_root] = _Launcher(data_root)
        return launcher


def prewarm(data_root: str) -> None:
    """Start the launcher now (daemon boot) so the first container start pays nothing."""
    launcher_for(data_root).ensure()


def stop_launchers() -> None:
    """Daemon shutdown: the launchers go, the shims stay."""
    with _launchers_lock:
        for launcher in _launchers.values():
            launcher.stop()
        _launchers.clear()


# -- attach streams registered before the container starts -------------------------------------------
class PendingAttach:
    """An attach to a created container: the stream is wired into the shim before the start."""

    def __init__(self, container_id: str, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.container_id = container_id
        self.flags = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        self.sock: socket.socket | None = None
        self.failed = False  # the start it waited for failed: nothing will come
        self.ready = threading.Event()

    def wait(self, timeout: float | None = None) -> socket.socket | None:
        """The stream socket once the container started, or None (timeout / cancelled)."""
        self.ready.wait(timeout)
        return self.sock

    def cancel(self) -> None:
        with _pending_lock:
            waiting = _pending.get(self.container_id, [])
            if self in waiting:
                waiting.remove(self)
        self.ready.set()


_pending: dict[str, list[PendingAttach]] = {}
_pending_lock = threading.Lock()


def register_attach(container_id: str, stdin: bool, stdout: bool, stderr: bool) -> PendingAttach:
    """Ask to be attached from the very first byte when ``container_id`` is next started."""
    pending = PendingAttach(container_id, stdin, stdout, stderr)
    with _pending_lock:
        _pending.setdefault(container_id, []).append(pending)
    return pending


def _take_pending(container_id: str) -> list[PendingAttach]:
    with _pending_lock:
        return _pending.pop(container_id, [])


# -- talking to a shim ----------------------------------------------------------------------------
def _connect(state_dir: str, timeout: float | None = 10.0, name: str = SOCKET_NAME) -> socket.socket:
    return protocol.connect(state_dir, name, timeout)


_read_line = protocol.read_line


def _request(sock: socket.socket, cmd: dict[str, Any]) -> dict[str, Any]:
    reply = protocol.request(sock, cmd)
    if reply is None:
        raise ShimError("the container's shim closed the connection")
    return reply


def _raise_for(reply: dict[str, Any]) -> None:
    if reply.get("ok") is False:
        kind = reply.get("kind")
        if kind:
            raise OCIRuntimeError(str(reply.get("error")), kind)
        raise ShimError(str(reply.get("error")))


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_exit(state_dir: str) -> ExitStatus | None:
    data = _read_json(os.path.join(state_dir, EXIT_NAME))
    if data is None:
        return None
    return ExitStatus(int(data["exit_code"]), bool(data.get("oom_killed")), str(data.get("finished_at", "")))


def _shim_log_tail(state_dir: str) -> str:
    try:
        with open(os.path.join(state_dir, LOG_NAME), "rb") as fh:
            return fh.read()[-2000:].decode(errors="replace").strip()
    except OSError:
        return ""


class ShimClient:
    """A running (or just exited) container as the daemon sees it through its shim."""

    def __init__(self, cfg: ShimConfig, pid: int, status: ExitStatus | None = None) -> None:
        self.cfg = cfg
        self.pid = pid
        self._status = status
        self._callbacks: list[Callable[[ExitStatus], None]] = []
        self._lock = threading.Lock()
        self._notified = False
        self._closed = False
        self._waiter: socket.socket | None = None

    # -- life cycle --------------------------------------------------------------------------------
    @classmethod
    def launch(cls, cfg: ShimConfig) -> ShimClient:
        """Start the shim, which creates and starts the container; returns once it runs."""
        os.makedirs(cfg.state_dir, exist_ok=True)
        for name in (EXIT_NAME, LOG_NAME):
            try:
                os.unlink(os.path.join(cfg.state_dir, name))
            except FileNotFoundError:
                pass
        pendings = _take_pending(cfg.container_id)
        ours, theirs = socket.socketpair()
        pairs = [socket.socketpair() for _ in pendings]
        body = asdict(cfg)
        body["attach"] = [p.flags for p in pendings]
        launcher = launcher_for(_data_root_of(cfg))
        try:
            launcher.ensure()
            body["monitor"] = launcher.monitor
            launcher.send(body, [theirs.fileno(), *(b.fileno() for _, b in pairs)])
        except (OSError, RuntimeError) as exc:
            for a, b in pairs:
                a.close()
                b.close()
            ours.close()
            theirs.close()
            for p in pendings:
                p.failed = True
                p.ready.set()
            raise OCIRuntimeError(f"cannot start the container's shim: {exc}", "other") from exc
        theirs.close()
        for _, b in pairs:
            b.close()
        try:
            ours.settimeout(LAUNCH_TIMEOUT)
            line = _read_line(ours)
        except OSError:
            line = b""
        finally:
            ours.close()
        reply: dict[str, Any] = json.loads(line) if line else {}
        if not reply.get("ok"):
            for (a, _), p in zip(pairs, pendings, strict=True):
                a.close()
                p.failed = True
                p.ready.set()
            message = reply.get("error") or _shim_log_tail(cfg.state_dir) or "the container's shim failed to start"
            raise OCIRuntimeError(str(message), str(reply.get("kind") or "other"))
        for (a, _), p in zip(pairs, pendings, strict=True):
            p.sock = a
            p.ready.set()
        client = cls(cfg, int(reply["pid"]))
        client._start_monitor()
        return client

    @classmethod
    def connect(cls, cfg: ShimConfig) -> ShimClient | None:
        """Reattach after a daemon restart.

        Returns a client for a live shim, or one whose ``on_exit`` fires at once
        when the container exited while the daemon was down (exit.json); None
        when there is neither.
        """
        try:
            sock = _connect(cfg.state_dir, 5.0)
        except OSError:
            status = _read_exit(cfg.state_dir)
            if status is None:
                return None
            client = cls(cfg, 0, status)
            client._delete_from_runtime()
            return client
        with sock:
            try:
                reply = _request(sock, {"cmd": "status"})
            except (OSError, ShimError, ValueError):
                reply = {}
        if not reply.get("ok"):
            status = _read_exit(cfg.state_dir)
            if status is None:
                return None
            client = cls(cfg, 0, status)
            client._delete_from_runtime()
            return client
        client = cls(cfg, int(reply.get("pid") or 0))
        client._start_monitor()
        return client

    def _start_monitor(self) -> None:
        """Learn of the exit: one ``wait`` connection, watched with every other container's on one thread."""
        try:
            self._waiter = _connect(self.cfg.state_dir, None)
            self._waiter.sendall(b'{"cmd": "wait"}\n')
        except OSError:
            if self._waiter is not None:
                self._waiter.close()
            self._waiter = None
            threading.Thread(target=self._exited, args=(b"",), daemon=True).start()
            return
        WATCHER.watch(self._waiter, self._exited)

    def _exited(self, line: bytes) -> None:
        """The shim's answer to ``wait`` (b"" when it went away without one): record, clean up, tell."""
        status: ExitStatus | None = None
        if line:
            try:
                data = json.loads(line)
                status = ExitStatus(int(data["exit_code"]), bool(data["oom_killed"]), str(data["finished_at"]))
            except (ValueError, KeyError, TypeError):
                status = None
        if status is None:
            status = _read_exit(self.cfg.state_dir)
        if status is None:
            from dockyard.runtime.logformat import rfc3339_nano

            log.warning("shim of %s vanished without an exit status", self.cfg.container_id)
            status = ExitStatus(255, False, rfc3339_nano(trim=False),
                                "the container's monitor died without reporting an exit status; "
                                "its processes were killed")
        self._delete_from_runtime()
        self._deliver(status)

    def _runtime(self) -> OCIRuntime:
        from dockyard.runtime.api import get_runtime

        return get_runtime(self.cfg.runtime, self.cfg.runtime_root)

    def _delete_from_runtime(self) -> None:
        """The init is gone (or its shim is): the runtime removes what is left (cgroup, state, stray processes)."""
        try:
            self._runtime().delete(self.cfg.container_id, force=True)
        except Exception as exc:  # noqa: BLE001 - already gone is fine
            log.debug("runtime delete of %s: %s", self.cfg.container_id, exc)

    def _deliver(self, status: ExitStatus) -> None:
        with self._lock:
            self._status = status
            if self._notified or not self._callbacks:
                return
            self._notified = True
            callbacks = list(self._callbacks)
        for cb in callbacks:
            try:
                cb(status)
            except Exception:  # noqa: BLE001 - one failing handler must not hide the exit from others
                log.exception("exit handler of %s failed", self.cfg.container_id)

    def on_exit(self, callback: Callable[[ExitStatus], None]) -> None:
        """Call ``callback`` once when the container exits (at once, on a thread, if it already has)."""
        with self._lock:
            self._callbacks.append(callback)
            status = None if self._notified else self._status
        if status is not None:
            threading.Thread(target=self._deliver, args=(status,), daemon=True).start()

    def exit_status(self) -> ExitStatus | None:
        return self._status

    def close(self) -> None:
        """Forget the shim; it goes away on its own once the exit was recorded."""
        self._closed = True

    # -- requests ----------------------------------------------------------------------------------
    def _call(self, cmd: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        try:
            sock = _connect(self.cfg.state_dir, timeout)
        except OSError as exc:
            raise OCIRuntimeError(f"container {self.cfg.container_id} is not running", "state") from exc
        with sock:
            reply = _request(sock, cmd)
        _raise_for(reply)
        return reply

    def signal(self, sig: int, all: bool = False) -> None:
        """Through the runtime, which checks the init is still the process it started."""
        if self._status is not None:
            raise OCIRuntimeError("container not running", "state")
        self._runtime().kill(self.cfg.container_id, int(sig), all)

    def resize(self, height: int, width: int) -> None:
        self._call({"cmd": "resize", "h": height, "w": width})

    def flush_logs(self, timeout: float = 5.0) -> None:
        """Have the monitor move what the container already wrote (still in its stdout/stderr pipes) into the
        log, and wait until it has. A monitor that is gone or no longer listening has drained the pipes and
        closed the log already (it stops listening only after that)."""
        if self._status is not None:
            return
        try:
            sock = _connect(self.cfg.state_dir, timeout)
        except OSError:
            return
        with sock:
            try:
                _request(sock, {"cmd": protocol.FLUSH})
            except (OSError, ShimError, ValueError):
                return

    def attach(self, stdin: bool, stdout: bool, stderr: bool, logs: bool = False) -> socket.socket:
        """A stream socket to the running container (see the module doc of dockyard.runtime.shim.start).

        With ``logs`` the stream first replays the log (as docker's attach?logs=1
        does), then goes live.
        """
        try:
            sock = _connect(self.cfg.state_dir, 10.0)
        except OSError as exc:
            raise OCIRuntimeError(f"container {self.cfg.container_id} is not running", "state") from exc
        try:
            reply = _request(sock, {"cmd": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})
            _raise_for(reply)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        if not logs:
            return sock
        ours, theirs = socket.socketpair()
        limit = int(reply.get("log_size", -1))
        threading.Thread(target=self._replay_then_relay, args=(sock, ours, stdout, stderr, limit),
                         daemon=True).start()
        return theirs

    def _replay_then_relay(self, live: socket.socket, pair: socket.socket, stdout: bool, stderr: bool,
                           limit: int) -> None:
        from dockyard.containers.logs import READABLE_DRIVERS, LogQuery, read_logs

        def upstream() -> None:  # caller's writes -> container stdin
            try:
                while data := pair.recv(65536):
                    live.sendall(data)
                live.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=upstream, daemon=True).start()
        try:
            if self.cfg.log_driver in READABLE_DRIVERS:
                q = LogQuery(stdout=stdout, stderr=stderr, live_limit=limit)
                for chunk in read_logs(self.cfg.log_path, self.cfg.log_driver, q, self.cfg.tty, lambda: False):
                    pair.sendall(chunk)
            while data := live.recv(65536):
                pair.sendall(data)
        except OSError:
            pass
        finally:
            live.close()
            try:
                pair.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def exec(
        self, exec_id: str, process: dict[str, Any], tty: bool, stdin: bool, stdout: bool, stderr: bool
    ) -> tuple[int, socket.socket]:
        """Spawn ``process`` in the container through an exec shim; returns its pid and its stream."""
        cfg = self.cfg
        body = {
            "kind": "exec",
            "container_id": cfg.container_id,
            "state_dir": cfg.state_dir,
            "runtime": cfg.runtime,
            "runtime_root": cfg.runtime_root,
            "exec_id": exec_id,
            "process": process,
            "tty": tty,
            "stdin": stdin,
            "stdout": stdout,
            "stderr": stderr,
        }
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                launcher_for(_data_root_of(cfg)).send(body, [theirs.fileno()])
            ours.settimeout(30.0)
            line = _read_line(ours)
            if not line:
                raise OCIRuntimeError(_shim_log_tail(cfg.state_dir) or "the exec's shim died without a word", "other")
            reply: dict[str, Any] = json.loads(line)
            _raise_for(reply)
        except BaseException:
            ours.close()
            raise
        ours.settimeout(None)
        return int(reply["pid"]), ours

    def wait_exec(self, exec_id: str, timeout: float | None = None) -> int:
        """Block until the exec'd process exited and its output was delivered; its exit code."""
        sock_name, exit_name = exec_names(exec_id)
        exit_path = os.path.join(self.cfg.state_dir, exit_name)
        try:
            with _connect(self.cfg.state_dir, timeout, sock_name) as sock:
                reply = _request(sock, {"cmd": "wait"})
        except (OSError, ShimError):  # the exec shim has left: it wrote the code down first
            reply = _read_json(exit_path) or {}
            if "exit_code" not in reply:
                raise ShimError("the exec's shim is gone") from None
        try:  # read once: healthchecks exec every few seconds for the container's whole life
            os.unlink(exit_path)
        except FileNotFoundError:
            pass
        _raise_for(reply)
        return int(reply["exit_code"])

    def resize_exec(self, exec_id: str, height: int, width: int) -> None:
        try:
            sock = _connect(self.cfg.state_dir, 10.0, exec_names(exec_id)[0])
        except OSError as exc:
            raise OCIRuntimeError(f"exec {exec_id} is not running", "state") from exc
        with sock:
            _raise_for(_request(sock, {"cmd": "resize", "h": height, "w": width}))


def probe_status(state_dir: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The ``status`` answer of the shim serving ``state_dir`` (its init's pid, running or not), or None when no
    shim answers within ``timeout`` (none there, or one still busy with the runtime's create)."""
    try:
        sock = _connect(state_dir, timeout)
    except OSError:
        return None
    with sock:
        try:
            reply = _request(sock, {"cmd": "status"})
        except (OSError, ShimError, ValueError):
            return None
    return reply if reply.get("ok") else None


def shim_pid(state_dir: str) -> int | None:
    """Pid of the shim serving ``state_dir`` (for cleanup tooling), if it runs."""
    try:
        with open(os.path.join(state_dir, PID_NAME)) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None
