"""docker exec: records of exec instances, starting them through the container's shim, healthcheck runs.

Exec instances live in memory (docker forgets them on restart too); the
process itself is spawned by the shim through the runtime's ``exec`` so it
joins the container's namespaces and cgroup and is reaped by the shim, which
reports its exit code.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dockyard.containers import spec as spec_mod
from dockyard.containers.publish import publish_container_event
from dockyard.containers.stdcopy import DEFAULT_DETACH_KEYS, parse_detach_keys, relay
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.util import failpoint
from dockyard.util.ids import new_id
from dockyard.util.stdcopy import Demuxer, frame

if TYPE_CHECKING:
    from dockyard.containers.directory import ContainerDirectory
    from dockyard.containers.ports import ClientStream, Snapshots
    from dockyard.containers.shim_client import ShimClient
    from dockyard.containers.state import Container
    from dockyard.events.bus import EventBus

log = logging.getLogger(__name__)

HEALTH_OUTPUT_MAX = 4096
KEEP_FINISHED = 5 * 60.0  # seconds a finished exec stays inspectable once its container has many


@dataclass
class ExecRecord:
    id: str
    container_id: str
    cmd: list[str]
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    env: list[str]
    user: str
    workdir: str
    privileged: bool
    detach_keys: str
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    finished_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    spawned: threading.Event = field(default_factory=threading.Event)

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0] if self.cmd else "",
                "arguments": self.cmd[1:],
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "Pid": self.pid,
        }


class ExecService:
    """Creates, starts and tracks exec instances; ``run`` is the healthcheck's one-call form."""

    def __init__(self, containers: ContainerDirectory, snapshots: Snapshots, events: EventBus) -> None:
        self.containers = containers
        self.snapshots = snapshots
        self.events = events
        self._execs: dict[str, ExecRecord] = {}
        self._lock = threading.Lock()

    # -- lookups -----------------------------------------------------------------------------------
    def ids_for(self, container_id: str) -> list[str]:
        """Exec IDs of a container for inspect's ExecIDs (docker lists the live ones)."""
        with self._lock:
            return [e.id for e in self._execs.values() if e.container_id == container_id and not e.done.is_set()]

    def get(self, exec_id: str) -> ExecRecord:
        with self._lock:
            rec = self._execs.get(exec_id)
            if rec is None:
                matches = [e for e in self._execs.values() if e.id.startswith(exec_id)] if exec_id else []
                rec = matches[0] if len(matches) == 1 else None
        if rec is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return rec

    def _running_container(self, ref: str) -> Container:
        c = self.containers.get(ref)
        st = c.state
        if st.Paused:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if st.Restarting:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if not st.Running or c.shim is None:
            raise Conflict(f"container {c.id} is not running")
        return c

    def _publish(self, c: Container, action: str, **attrs: str) -> None:
        publish_container_event(self.events, c, action, **attrs)

    def _process(self, c: Container, cmd: list[str], env: list[str] | None, user: str, workdir: str, tty: bool,
                 privileged: bool) -> dict[str, Any]:
        """The OCI process for `exec`: the container's env and caps rules, resolved in its rootfs."""
        rootfs = self.snapshots.mount(c.id)
        return spec_mod.process_spec(c.host_config, rootfs, list(cmd),
                                     spec_mod.merge_env(list(c.config.get("Env") or []), list(env or [])),
                                     user or c.config.get("User") or "", workdir or c.config.get("WorkingDir") or "/",
                                     tty, privileged or bool(c.host_config.get("Privileged")),
                                     c.config.get("Hostname") or "")

    # -- API ---------------------------------------------------------------------------------------
    def create(self, container_id_or_name: str, body: dict[str, Any]) -> str:
        # dockerd decodes JSON with Go's case-insensitive field match: docker-py sends "detachKeys"
        body = {_EXEC_FIELDS.get(k.lower(), k): v for k, v in body.items()}
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidParameter("No exec command specified")
        c = self._running_container(container_id_or_name)
        keys = body.get("DetachKeys") or ""
        if keys:
            try:
                parse_detach_keys(keys)
            except ValueError as exc:
                raise InvalidParameter(str(exc)) from None
        rec = ExecRecord(
            id=new_id(),
            container_id=c.id,
            cmd=[str(a) for a in cmd],
            tty=bool(body.get("Tty")),
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout")),
            attach_stderr=bool(body.get("AttachStderr")),
            env=list(body.get("Env") or []),
            user=str(body.get("User") or ""),
            workdir=str(body.get("WorkingDir") or ""),
            privileged=bool(body.get("Privileged")),
            detach_keys=keys,
        )
        with self._lock:
            self._prune_locked()
            self._execs[rec.id] = rec
        failpoint.hit("exec.create.recorded")  # exec records live in memory: restart forgets it, as dockerd does
        self._publish(c, "exec_create: " + " ".join(rec.cmd), execID=rec.id)
        return rec.id

    def check_startable(self, exec_id: str) -> ExecRecord:
        """Errors worth an HTTP status, raised before the connection is hijacked."""
        rec = self.get(exec_id)
        if rec.started:
            raise Conflict(f"Error: Exec command {rec.id} is already running" if rec.running
                           else f"Error: Exec command {rec.id} has already run")
        self._running_container(rec.container_id)
        return rec

    def start(self, exec_id: str, detach: bool, tty: bool, conn: ClientStream | None,
              console_size: list[int] | None = None, raw_output: bool | None = None) -> None:
        """Run the exec; with ``conn`` stream it until the process ends. ``raw_output`` (the start request's
        Tty, as docker decides it) says whether the stream is raw or in docker's framing; by default it
        follows the exec's terminal."""
        rec = self.check_startable(exec_id)
        c = self._running_container(rec.container_id)
        rec.tty = rec.tty or tty
        rec.started = True
        t0 = time.perf_counter()
        try:
            process = self._process(c, rec.cmd, rec.env, rec.user, rec.workdir, rec.tty, rec.privileged)
            if console_size and rec.tty and len(console_size) == 2 and all(console_size):
                # sized before the process starts, or a quick command sees a 0x0 terminal
                process["consoleSize"] = {"height": int(console_size[0]), "width": int(console_size[1])}
            streaming = conn is not None and not detach
            t1 = time.perf_counter()
            failpoint.hit("exec.start.launching")  # nothing was spawned: restart finds no trace of the exec
            pid, stream = _shim(c).exec(
                rec.id,
                process,
                rec.tty,
                stdin=streaming and rec.attach_stdin,
                stdout=streaming and rec.attach_stdout,
                stderr=streaming and rec.attach_stderr,
            )
        except (OCIRuntimeError, Conflict, InvalidParameter, OSError) as exc:
            rec.started = True
            rec.exit_code = _exit_code_for(exc)
            rec.done.set()
            rec.spawned.set()
            rec.finished_at = time.monotonic()
            message = getattr(exc, "message", None) or str(exc)
            if conn is not None and not detach:
                raw = rec.tty if raw_output is None else raw_output
                conn.sendall(message.encode() + b"\r\n" if raw else frame("stderr", message.encode() + b"\n"))
                return
            raise Conflict(message) from exc
        failpoint.hit("exec.start.spawned")  # the exec's shim runs on: restore follows it (containers/recovery.py)
        rec.pid = pid
        rec.running = True
        rec.spawned.set()
        log.debug("exec %s: process spec %.1f ms, shim %.1f ms", rec.id[:12], (t1 - t0) * 1000,
                  (time.perf_counter() - t1) * 1000)
        self._publish(c, "exec_start: " + " ".join(rec.cmd), execID=rec.id)
        watcher = threading.Thread(target=self._watch, args=(c, rec), name=f"exec-{rec.id[:12]}", daemon=True)
        watcher.start()
        if conn is None or detach:
            stream.close()
            return
        keys = parse_detach_keys(rec.detach_keys) if rec.detach_keys else DEFAULT_DETACH_KEYS if rec.tty else b""
        try:
            detached = relay(conn, stream, rec.attach_stdin, keys, frame_raw=rec.tty and raw_output is False)
            if not detached:  # a detached client's stream ends now; the process goes on
                rec.done.wait(5.0)  # so an inspect right after the stream ends sees the exit code
        finally:
            conn.close()

    def _watch(self, c: Container, rec: ExecRecord) -> None:
        try:
            code = _shim(c).wait_exec(rec.id)
        except Exception as exc:  # noqa: BLE001 - a vanished shim means the process is gone too
            log.debug("exec %s: %s", rec.id, exc)
            code = 137
        rec.exit_code = code
        rec.running = False
        rec.finished_at = time.monotonic()
        rec.done.set()
        self._publish(c, "exec_die", execID=rec.id, exitCode=str(code))

    def inspect(self, exec_id: str) -> dict[str, Any]:
        return self.get(exec_id).inspect()

    def resize(self, exec_id: str, h: int, w: int) -> None:
        rec = self.get(exec_id)
        if rec.started:
            rec.spawned.wait(5.0)  # a client resizes right after start, on another connection
        if not rec.running:
            raise Conflict(f"Exec {rec.id} is not running")
        c = self.containers.get(rec.container_id)
        if c.shim is None:
            raise Conflict(f"container {c.id} is not running")
        try:
            c.shim.resize_exec(rec.id, h, w)
        except OCIRuntimeError as exc:
            raise Conflict(exc.message) from None

    def run(self, container_id: str, cmd: list[str], timeout: float, env: list[str] | None = None,
            user: str = "") -> tuple[int, bytes]:
        """Healthcheck form: (exit code, first 4 KiB of output); -1 when it timed out (and was killed)."""
        c = self._running_container(container_id)
        rec = ExecRecord(new_id(), c.id, list(cmd), False, False, True, True, list(env or []), user, "",
                         False, "")
        with self._lock:
            self._prune_locked()
            self._execs[rec.id] = rec
        rec.started = True
        process = self._process(c, rec.cmd, rec.env, user, "", False, False)
        pid, stream = _shim(c).exec(rec.id, process, False, stdin=False, stdout=True, stderr=True)
        rec.pid, rec.running = pid, True
        self._publish(c, "exec_start: " + " ".join(rec.cmd), execID=rec.id)
        output = bytearray()
        deadline = time.monotonic() + timeout
        timed_out = False
        pending = Demuxer()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                stream.settimeout(left)
                try:
                    data = stream.recv(65536)
                except TimeoutError:
                    timed_out = True
                    break
                if not data:
                    break
                for _sid, payload in pending.feed(data):
                    if len(output) < HEALTH_OUTPUT_MAX:
                        output += payload
        finally:
            stream.close()
        if timed_out:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            code = _shim(c).wait_exec(rec.id, timeout=10.0)
        except Exception:  # noqa: BLE001
            code = 137
        rec.exit_code, rec.running = code, False
        rec.finished_at = time.monotonic()
        rec.done.set()
        self._publish(c, "exec_die", execID=rec.id, exitCode=str(-1 if timed_out else code))
        return (-1 if timed_out else code), bytes(output[:HEALTH_OUTPUT_MAX])

    def _prune_locked(self) -> None:
        """Forget finished execs after a while so healthchecks do not grow the table forever."""
        now = time.monotonic()
        for key in [k for k, e in self._execs.items() if e.done.is_set() and now - e.finished_at > KEEP_FINISHED]:
            del self._execs[key]


def _shim(c: Container) -> ShimClient:
    """The container's live shim; a container that stopped in between has none (a conflict, as in docker)."""
    shim = c.shim
    if shim is None:
        raise Conflict(f"container {c.id} is not running")
    return shim


_EXEC_FIELDS = {k.lower(): k for k in ("Cmd", "Tty", "AttachStdin", "AttachStdout", "AttachStderr", "Env", "User",
                                       "WorkingDir", "Privileged", "DetachKeys", "ConsoleSize")}


def _exit_code_for(exc: Exception) -> int:
    """docker's exec: a process that could not be started, not found or not executable, exits 126 (only
    `run` tells the two apart, 127 and 126)."""
    del exc
    return 126
