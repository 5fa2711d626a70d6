"""The per-container shim: starts the container, then becomes the native monitor that serves it.

One shim per running container, detached from the daemon (own session,
reparented to init) so the container outlives a daemon crash.  It is forked
from the daemon's pre-warmed launcher, so the runtime's Python code is already
loaded: it binds ``shim.sock`` in the container's state dir, runs the runtime's
create + start with the container's stdio ends, reports the init's pid to the
daemon, and then execs ``dockyard-monitor`` (``native/monitor.c``) with those
fds.  The monitor is the init's subreaper for the rest of its life: it writes
the log, serves attach/wait/resize/status/flush on ``shim.sock`` (``protocol.py``),
reaps the init and records ``exit.json``.  A few hundred KiB of
C instead of a forked interpreter keeps an idle container cheap.

Exec'd processes are served by exec shims (``shim_exec``); signals and the
runtime's ``delete`` are the daemon's (``containers.shim_client``).
"""

from __future__ import annotations

import json
import os
import signal
import socket

from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.logformat import rotation_limits
from dockyard.runtime.shim.proc import Proc, bind_relative, spawn_with_stdio
from dockyard.runtime.shim.protocol import EXIT_NAME, LOG_NAME, PID_NAME, SOCKET_NAME

TYPE_CHECKING = False  # typing costs import time and shared memory in every shim
if TYPE_CHECKING:
    from typing import Any

    from dockyard.runtime.api import OCIRuntime



class ContainerStart:
    """The shim's life before it becomes the monitor: bind the socket, create + start, hand over."""

    def __init__(self, cfg: dict[str, Any], runtime: OCIRuntime) -> None:
        self.cfg = cfg
        self.cid: str = cfg["container_id"]
        self.state_dir: str = cfg["state_dir"]
        self.runtime = runtime
        self.listener: socket.socket | None = None
        self.init = Proc(None, bool(cfg.get("tty")), bool(cfg.get("stdin_once")))

    def listen(self) -> None:
        """Bind shim.sock by relative name (state dirs can be longer than a sun_path)."""
        os.chdir(self.state_dir)
        try:
            os.unlink(EXIT_NAME)
        except FileNotFoundError:
            pass
        self.listener = bind_relative(SOCKET_NAME, 64, 0o600)
        with open(PID_NAME + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.rename(PID_NAME + ".tmp", PID_NAME)

    def create_and_start(self) -> int:
        """Run the runtime's create + start with our stdio; raises OCIRuntimeError."""
        cfg = self.cfg

        def create_and_start(stdio: tuple[int, int, int] | None, console_socket: str | None) -> int:
            pid = self.runtime.create(
                self.cid,
                cfg["bundle"],
                stdio=stdio,
                console_socket=console_socket,
                pid_file=os.path.join(self.state_dir, "init.pid"),
            )
            self.runtime.start(self.cid)
            return pid

        return spawn_with_stdio(self.init, bool(cfg.get("open_stdin")), "console.sock", create_and_start)

    def stop_listening(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for name in (SOCKET_NAME, PID_NAME):
            try:
                os.unlink(os.path.join(self.state_dir, name))
            except OSError:
                pass

    def monitor_argv(self, attach_socks: list[socket.socket]) -> list[str]:
        """The monitor's command line; every fd it names is made inheritable."""
        cfg, proc = self.cfg, self.init
        assert self.listener is not None
        keep = [self.listener.fileno()]
        argv = [cfg["monitor"], "--state-dir", self.state_dir, "--listen-fd", str(keep[0]),
                "--init-pid", str(proc.pid)]
        if proc.master is not None:
            keep.append(proc.master)
            argv += ["--pty-fd", str(proc.master)]
        else:
            streams = {name: fd for fd, name in proc.outputs.items()}
            keep += [streams["stdout"], streams["stderr"]]
            argv += ["--stdout-fd", str(streams["stdout"]), "--stderr-fd", str(streams["stderr"])]
            if proc.stdin_fd is not None:
                keep.append(proc.stdin_fd)
                argv += ["--stdin-fd", str(proc.stdin_fd)]
        if proc.stdin_once:
            argv.append("--stdin-once")
        driver = cfg.get("log_driver") or "json-file"
        argv += ["--log-driver", driver]
        if driver in ("json-file", "local"):
            max_size, max_file = rotation_limits(cfg.get("log_opts") or {})
            argv += ["--log-path", cfg["log_path"], "--log-max-size", str(max_size), "--log-max-file", str(max_file)]
        oom_file = _oom_file(cfg["bundle"], self.cid)
        if oom_file:
            argv += ["--oom-file", oom_file]
        for sock, flags in zip(attach_socks, cfg.get("attach") or [], strict=False):
            keep.append(sock.fileno())
            letters = "".join(c for c, key in (("i", "stdin"), ("o", "stdout"), ("e", "stderr")) if flags.get(key))
            argv += ["--attach", f"{sock.fileno()}:{letters}"]
        for fd in keep:
            os.set_inheritable(fd, True)
        return argv


def _oom_file(bundle: str, cid: str) -> str | None:
    """Where the container's cgroup counts OOM kills (None when there is no memory controller)."""
    try:
        with open(os.path.join(bundle, "config.json")) as fh:
            path = (json.load(fh).get("linux") or {}).get("cgroupsPath")
        from dockyard.runtime.cgroups import open_cgroup

        return open_cgroup(path, cid).oom_events_file()
    except Exception as exc:  # noqa: BLE001 - without it the exit is still recorded, OOM as false
        os.write(2, f"oom file: {exc}\n".encode())
        return None


def serve(cfg: dict[str, Any], result: socket.socket, attach_socks: list[socket.socket]) -> None:
    """Body of the forked shim process (already in its own session): start the container, become the monitor."""
    from dockyard.sys.linux import set_child_subreaper

    set_child_subreaper()
    os.makedirs(cfg["state_dir"], exist_ok=True)
    log_fd = os.open(
        os.path.join(cfg["state_dir"], LOG_NAME), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
    )
    os.dup2(log_fd, 2)
    os.close(log_fd)
    from dockyard.runtime.api import get_runtime

    start = ContainerStart(cfg, get_runtime(cfg["runtime"], cfg["runtime_root"]))
    try:
        start.listen()
        pid = start.create_and_start()
    except BaseException as exc:  # noqa: BLE001 - report every failure to the daemon, leave nothing behind
        kind = exc.kind if isinstance(exc, OCIRuntimeError) else "other"
        message = exc.message if isinstance(exc, OCIRuntimeError) else f"shim: {exc!r}"
        try:
            start.runtime.delete(start.cid, force=True)
        except Exception as err:  # noqa: BLE001
            os.write(2, f"runtime delete after a failed start: {err}\n".encode())
        _kill_created_init(os.path.join(start.state_dir, "init.pid"))
        start.stop_listening()
        _send_result(result, {"ok": False, "error": message, "kind": kind})
        os._exit(1)
    _send_result(result, {"ok": True, "pid": pid})
    try:
        argv = start.monitor_argv(attach_socks)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.execv(argv[0], argv)
    except BaseException as exc:  # noqa: BLE001 - a container nobody serves must not keep running
        os.write(2, f"cannot exec the monitor: {exc!r}\n".encode())
        try:
            start.runtime.kill(start.cid, signal.SIGKILL, True)
        except Exception:  # noqa: BLE001
            pass
        start.stop_listening()
        os._exit(1)


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
