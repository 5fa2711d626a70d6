"""The container service: records, the lifecycle state machine, exits, restart policies and live restore.

Every transition of one container happens under that container's lock; the shim's exit callback takes the same
lock, so a stop racing an exit sees one consistent state. Records are written to SQLite on every transition.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal as signal_mod
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dockyard.containers import create as create_mod
from dockyard.containers import links as links_mod
from dockyard.containers import mounts as mounts_mod
from dockyard.containers import restart as restart_mod
from dockyard.containers import spec as spec_mod
from dockyard.containers.directory import ContainerDirectory
from dockyard.containers.health import HealthMonitor
from dockyard.containers.netglue import NetGlue
from dockyard.containers.publish import publish_container_event
from dockyard.containers.signals import parse_signal
from dockyard.containers.state import Container, State, now_rfc3339, parse_rfc3339
from dockyard.containers.stats import stats_stream
from dockyard.errors import Conflict, InvalidParameter, NotFound, NotModified, SystemError_
from dockyard.storage.atomic import write_json_atomic
from dockyard.storage.trash import remove_tree, trash_dir
from dockyard.util import failpoint
from dockyard.util.ids import random_name
from dockyard.util.placement import spread_new_dirs

if TYPE_CHECKING:
    from dockyard.containers.ports import (
        ContainerSettings,
        ExecRunner,
        ImageLookup,
        ImageRecord,
        NetworkBackend,
        Snapshots,
        VolumeBackend,
    )
    from dockyard.containers.shim_client import ExitStatus, ShimClient, ShimConfig
    from dockyard.events.bus import EventBus
    from dockyard.runtime.api import OCIRuntime
    from dockyard.runtime.cgroups import Cgroup

log = logging.getLogger("dockyard.containers")


class ContainerService:
    """Every collaborator is a required argument typed by the protocol it must meet (``containers/ports.py``);
    ``daemon/main.py`` is the one place that builds and passes them."""

    def __init__(self, cfg: ContainerSettings, directory: ContainerDirectory, events: EventBus,
                 images: ImageLookup, snapshots: Snapshots, networks: NetworkBackend, volumes: VolumeBackend,
                 execs: ExecRunner) -> None:
        self.cfg = cfg
        self.events = events
        self.images = images
        self.snapshots = snapshots
        self.volumes = volumes
        self.execs = execs  # healthchecks probe through exec; inspect lists a container's execs
        self.directory = directory
        self.store = directory.store
        self.root = os.path.join(cfg.data_root, "containers")
        os.makedirs(self.root, exist_ok=True)
        spread_new_dirs(self.root)  # each container's files in a lightly used block group (util/placement.py)
        self._lock = threading.RLock()
        self._clocks: dict[str, threading.Condition] = {}
        self._backoff: dict[str, restart_mod.Backoff] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._stopping: set[str] = set()
        self._removing: set[str] = set()
        self._removed = threading.Condition()
        self.net = NetGlue(networks, directory)
        self.health = HealthMonitor(self, execs)

    # -- lookups -------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/") or unique ID prefix — docker's 404 wording otherwise."""
        return self.directory.get(ref)

    def all(self) -> list[Container]:
        return self.directory.all()

    def cond(self, c: Container) -> threading.Condition:
        with self._lock:
            cv = self._clocks.get(c.id)
            if cv is None:
                cv = self._clocks[c.id] = threading.Condition(threading.RLock())
            return cv

    def state_dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def log_path(self, c: Container) -> str:
        return os.path.join(self.state_dir(c.id), f"{c.id}-json.log")

    def settle_logs(self, c: Container) -> None:
        """Before a log read: what the container wrote until now is in its log file (not still in a pipe)."""
        shim = c.shim
        if shim is not None:
            shim.flush_logs()

    def runtime_root(self, runtime: str) -> str:
        return os.path.join(self.cfg.data_root, "runtime", runtime)

    def runtime_for(self, c: Container) -> OCIRuntime:
        from dockyard.runtime.api import get_runtime

        return get_runtime(c.runtime, self.runtime_root(c.runtime))

    def live_ids(self) -> set[str]:
        return self.directory.live_ids()

    def publish(self, c: Container, action: str, **attrs: str) -> None:
        publish_container_event(self.events, c, action, **attrs)

    def save(self, c: Container) -> None:
        self.store.save(c)

    # -- create ----------------------------------------------------------------------------------
    def create(self, name: str | None, body: Any) -> tuple[str, list[str]]:
        """POST /containers/create: validate everything, then record, snapshot and volumes (or nothing)."""
        c = create_mod.new_record(self, name, body)
        self.net.configure(c)
        for attempt in range(10):
            try:
                self.store.insert(c)
                break
            except Conflict:
                if name or attempt == 9:
                    self.net.forget(c)
                    raise
                c.name = random_name()
        failpoint.hit("container.create.recorded")  # restore finishes the create (containers/recovery.py)
        try:
            os.makedirs(self.state_dir(c.id), 0o710, exist_ok=True)
            self.snapshots.prepare(c.id, c.image_id, self.images.get_by_id(c.image_id).chain_ids)
            for vol_name, target in mounts_mod.volume_names(c.host_config, c.config):
                vname = vol_name or c.anon_volumes.get(target, "")
                if vname:
                    self.volumes.ensure(vname, anonymous=not vol_name)
            # docker registers the mount points at create: inspect shows them and a copy into a volume's
            # path of a never-started container lands in the volume (resolve_for makes its directory)
            c.mounts = mounts_mod.plan(c.host_config, c.config, c.anon_volumes, self.volumes.resolve_for, c.id,
                                       c.volumes_from, make_sources=False).inspect
            self.save(c)
        except BaseException:
            self._discard(c)
            raise
        self.directory.add(c)
        self.publish(c, "create")
        return c.id, []

    def _discard(self, c: Container) -> None:
        """Undo a half-made create: nothing may be left."""
        self.net.forget(c)
        try:
            self.snapshots.remove(c.id)
        except Exception:  # noqa: BLE001
            log.exception("cannot remove snapshot of %s", c.id)
        shutil.rmtree(self.state_dir(c.id), ignore_errors=True)
        self.store.delete(c.id)

    # -- start -----------------------------------------------------------------------------------
    def start(self, ref: str) -> None:
        c = self.get(ref)
        with self.cond(c):
            if c.state.Paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.Running:
                raise NotModified("container already started")
            if c.state.Status == "removing":
                raise Conflict("container is marked for removal and cannot be started")
            self._cancel_timer(c.id)
            c.manually_stopped = False
            c.restart_canceled = False
            error: BaseException | None = None
            try:
                self._start_locked(c)
            except BaseException as e:  # noqa: BLE001 - re-raised below, once the lock is released
                error = e
        if error is not None:
            if c.host_config.get("AutoRemove"):  # `run --rm` of a container that cannot start leaves nothing
                self._auto_remove(c.id)
            raise error
        self.publish(c, "start")

    def _start_locked(self, c: Container) -> None:
        from dockyard.containers.shim_client import ShimClient
        from dockyard.runtime.errors import OCIRuntimeError

        state_dir = self.state_dir(c.id)
        os.makedirs(state_dir, 0o710, exist_ok=True)
        mounted = netted = False
        refusal = spec_mod.oom_score_adj_refusal(c.host_config)
        if refusal is not None:
            self._record_start_failure(c, 126, refusal)
            raise InvalidParameter(refusal)
        t0 = time.perf_counter()
        try:
            rootfs = self.snapshots.mount(c.id)
            mounted = True
            failpoint.hit("container.start.mounted")
            t1 = time.perf_counter()
            linked = ([] if links_mod.on_user_network(c.host_config)
                      else links_mod.resolve(c.host_config.get("Links"), c.name, self.get))
            net_files = self.net.prepare(c, state_dir, links_mod.hosts(linked))
            netted = True
            failpoint.hit("container.start.networked")
            t2 = time.perf_counter()
            plan = mounts_mod.plan(c.host_config, c.config, c.anon_volumes, self.volumes.resolve_for, c.id,
                                   c.volumes_from)
            mounts_mod.populate_volumes(plan, rootfs)
            parent = c.host_config.get("CgroupParent") or self.cfg.cgroup_parent
            config = c.config
            if linked:  # the link variables come first: the container's own Env overrides them (docker)
                config = {**c.config, "Env": spec_mod.merge_env(links_mod.env(linked, c.name),
                                                                list(c.config.get("Env") or []))}
            oci = spec_mod.generate(spec_mod.SpecInput(c.id, config, c.host_config, {}, rootfs, parent,
                                                       net_files, plan))
            write_json_atomic(os.path.join(state_dir, "config.json"), oci, durable=False)  # rebuilt each start
            failpoint.hit("container.start.spec-written")
            t3 = time.perf_counter()
            started_at = now_rfc3339()
            if ((c.host_config.get("LogConfig") or {}).get("Type") or self.cfg.log_driver) != "none":
                # the log exists once start returns, as docker's does: a reader right after start (docker-py's
                # run follows it, then removes the container) must not find it missing and give up
                os.close(os.open(self.log_path(c), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640))
            shim = ShimClient.launch(self.shim_config(c))
            failpoint.hit("container.start.shim-launched")  # restore adopts it (containers/recovery.py)
            t4 = time.perf_counter()
            log.debug("start %s: mount %.1f ms, network %.1f ms, spec %.1f ms, shim %.1f ms", c.id[:12],
                      (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3)
        except OCIRuntimeError as e:
            self.undo_start(c, mounted, netted)
            code = {"not_found": 127, "permission": 126}.get(e.kind, 128)
            self._record_start_failure(c, code, str(e))
            if code in (126, 127):
                raise InvalidParameter(str(e)) from None
            raise SystemError_(str(e)) from None
        except BaseException as e:
            self.undo_start(c, mounted, netted)
            if isinstance(e, (InvalidParameter, SystemError_, NotFound, Conflict)):
                self._record_start_failure(c, 128, str(e))
            raise
        c.mounts = plan.inspect
        c.cgroup_path = str((oci.get("linux") or {}).get("cgroupsPath") or "")
        c.has_been_started = True
        c.state.set_running(shim.pid, started_at)
        self.save(c)
        self.attach_shim(c, shim)
        self.health.watch(c)

    def _record_start_failure(self, c: Container, code: int, message: str) -> None:
        """Exit code and error of a failed start; a never-started container stays "created", as in docker."""
        if c.has_been_started:
            c.state.set_stopped(code, error=message)
        else:
            c.state.ExitCode, c.state.Error, c.state.Pid = code, message, 0
            c.state.Running = c.state.Restarting = False
        self.save(c)

    def undo_start(self, c: Container, mounted: bool, netted: bool) -> None:
        """Release what a start took (network, mount): a failed start, an exit, a shim lost at boot."""
        if netted:
            self.net.release(c)
        if mounted:
            try:
                self.snapshots.unmount(c.id)
            except Exception:  # noqa: BLE001
                log.exception("cannot unmount %s", c.id)

    # -- exit --------------------------------------------------------------------------------------
    def _on_exit(self, c: Container, shim: ShimClient, status: ExitStatus) -> None:
        restart_delay: float | None = None
        auto_remove = False
        cv = self.cond(c)
        with cv:
            if c.shim is not shim:
                return
            c.shim = None
            self.health.unwatch(c)
            self.undo_start(c, True, True)
            shim.close()
            ran_for = time.time() - parse_rfc3339(c.state.StartedAt)
            c.state.set_stopped(status.exit_code, status.oom_killed, status.finished_at, error=status.error)
            stopping = c.id in self._stopping
            if status.oom_killed:
                self.publish(c, "oom")
            self.publish(c, "die", exitCode=str(status.exit_code), execDuration=str(max(0, int(ran_for))))
            policy = c.host_config.get("RestartPolicy") or {}
            if not stopping and not c.restart_canceled and restart_mod.should_restart(
                    policy, status.exit_code, c.restart_count, c.manually_stopped):
                restart_delay = self._backoff.setdefault(c.id, restart_mod.Backoff()).next(ran_for)
                c.state.Restarting = True
                c.state.Status = "restarting"
            elif c.host_config.get("AutoRemove") and c.id not in self._removing:
                auto_remove = True
            self.save(c)
            cv.notify_all()
        if restart_delay is not None:
            timer = threading.Timer(restart_delay, self._policy_restart, args=(c.id,))
            timer.daemon = True  # the policy survives a daemon exit: boot restarts it
            with self._lock:
                self._timers[c.id] = timer
            timer.start()
        elif auto_remove:  # on the thread that delivered the exit: it has nothing else to do (no thread start)
            self._auto_remove(c.id)

    def _auto_remove(self, cid: str) -> None:
        try:
            self.remove(cid, force=True, volumes=True)
        except (NotFound, Conflict):
            pass
        except Exception:  # noqa: BLE001
            log.exception("auto-remove of %s failed", cid)

    def _policy_restart(self, cid: str) -> None:
        with self._lock:
            self._timers.pop(cid, None)
        c = self.directory.find(cid)
        if c is None:
            return
        cv = self.cond(c)
        with cv:
            if not c.state.Restarting or c.state.Running:
                return
            c.restart_count += 1
            try:
                self._start_locked(c)
            except Exception as e:  # noqa: BLE001 - a failed restart is recorded, then retried per policy
                log.warning("restart of %s failed: %s", cid, e)
                c.state.Restarting = False
                self.save(c)
                cv.notify_all()
                return
            cv.notify_all()
        self.publish(c, "start")

    def cancel_all_timers(self) -> None:
        with self._lock:
            timers = list(self._timers.values())
            self._timers.clear()
        for t in timers:
            t.cancel()

    def _cancel_timer(self, cid: str) -> None:
        with self._lock:
            timer = self._timers.pop(cid, None)
        if timer is not None:
            timer.cancel()

    def wait_exit(self, c: Container, timeout: float | None) -> bool:
        """Block until the container is not running (True) or the timeout passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        cv = self.cond(c)
        with cv:
            while c.state.Running or c.state.Paused:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                cv.wait(left if left is not None else 1.0)
        return True

    # -- stop / kill / restart ---------------------------------------------------------------
    def _signal(self, c: Container, sig: int) -> None:
        shim = c.shim
        if shim is None:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.Paused and sig == signal_mod.SIGKILL:
            try:
                shim.signal(sig, all=True)
            finally:
                try:
                    self.runtime_for(c).resume(c.id)
                except Exception:  # noqa: BLE001
                    pass
            return
        shim.signal(sig)

    def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        with self.cond(c):
            if c.state.Restarting:
                self._cancel_timer(c.id)
                c.manually_stopped = True
                c.state.Restarting = False
                c.state.Status = "exited"
                self.save(c)
                self.publish(c, "stop")
                return
            if not c.state.Running:
                raise NotModified("container already stopped")
            c.manually_stopped = True
            self._stopping.add(c.id)
        try:
            self._stop_running(c, timeout, sig)
        finally:
            with self._lock:
                self._stopping.discard(c.id)
        self.publish(c, "stop")

    def _stop_running(self, c: Container, timeout: int | None, sig: str | None) -> None:
        stop_signal = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM", signal_mod.SIGTERM)
        if timeout is None:
            st = c.config.get("StopTimeout")
            timeout = int(st) if st is not None else 10
        if c.state.Paused and stop_signal != signal_mod.SIGKILL:
            self._unpause_quiet(c)
        try:
            self._signal(c, stop_signal)
            self.publish(c, "kill", signal=str(stop_signal))
        except Conflict:
            return
        failpoint.hit("container.stop.signalled")  # restore finds it running (adopted) or its exit recorded
        if timeout < 0:
            self.wait_exit(c, None)
            return
        if self.wait_exit(c, float(timeout)):
            return
        try:
            self._signal(c, signal_mod.SIGKILL)
            self.publish(c, "kill", signal=str(int(signal_mod.SIGKILL)))
        except Conflict:
            return
        if not self.wait_exit(c, 30.0):
            raise SystemError_(f"cannot stop container {c.id}: tried to kill container, but did not receive an exit event")

    def _unpause_quiet(self, c: Container) -> None:
        try:
            self.runtime_for(c).resume(c.id)
        except Exception:  # noqa: BLE001
            log.exception("resume of %s before stop failed", c.id)
        c.state.Paused = False
        c.state.Status = "running"

    def kill(self, ref: str, sig: str | None = None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig, signal_mod.SIGKILL)
        with self.cond(c):
            if not c.state.Running:
                raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
            if c.state.Paused and signum != signal_mod.SIGKILL:
                raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is paused. Unpause the container "
                               "before stopping or killing")
            c.manually_stopped = True  # holds back unless-stopped, like docker's kill
            configured = c.config.get("StopSignal")
            if signum == signal_mod.SIGKILL or not configured or \
                    parse_signal(str(configured), signal_mod.SIGTERM) == signum:
                c.restart_canceled = True
            self._signal(c, signum)
        self.publish(c, "kill", signal=str(signum))
        if signum == signal_mod.SIGKILL:
            self.wait_exit(c, 10.0)

    def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.state.Running or c.state.Restarting:
            try:
                self.stop(c.id, timeout, sig)
            except NotModified:
                pass
        failpoint.hit("container.restart.stopped")  # restore finds it stopped; the retried restart starts it
        with self.cond(c):
            self._cancel_timer(c.id)
            c.manually_stopped = False
            if not c.state.Running:
                self._start_locked(c)
        self.publish(c, "start")
        self.publish(c, "restart")

    # -- pause -------------------------------------------------------------------------------------
    def pause(self, ref: str) -> None:
        c = self.get(ref)
        with self.cond(c):
            if not c.state.Running:
                raise Conflict(f"Container {c.id} is not running")
            if c.state.Paused:
                raise Conflict(f"Container {c.id} is already paused")
            self._freeze(c, pause=True)
            c.state.Paused = True
            c.state.Status = "paused"
            self.save(c)
        self.publish(c, "pause")

    def unpause(self, ref: str) -> None:
        c = self.get(ref)
        with self.cond(c):
            if not c.state.Paused:
                raise Conflict(f"Container {c.id} is not paused")
            try:
                self._freeze(c, pause=False)
            except Conflict:
                c.state.Paused = False  # its process is gone: nothing is frozen any more
                self.save(c)
                raise
            c.state.Paused = False
            c.state.Status = "running"
            self.save(c)
        self.publish(c, "unpause")

    def _freeze(self, c: Container, pause: bool) -> None:
        """Pause or resume in the runtime; a container whose process just exited (its exit not yet handled
        here) is docker's 409 "not running", not a server error."""
        from dockyard.runtime.errors import OCIRuntimeError

        rt = self.runtime_for(c)
        try:
            rt.pause(c.id) if pause else rt.resume(c.id)
        except OCIRuntimeError as e:
            if e.kind in ("not_exist", "state"):
                raise Conflict(f"Container {c.id} is not running") from None
            raise

    def remove_link(self, ref: str) -> None:
        """DELETE /containers/{parent}/{alias}?link=1: the parent forgets the link (the target is untouched)."""
        parent_ref, _, alias = ref.strip("/").rpartition("/")
        if not parent_ref:
            # dockerd looks the name up first (404), then refuses its default link name with a plain error
            # (500); the message names the conflict, so it answers 409 here (docs/architecture.md)
            self.get(ref)
            raise Conflict("Conflict, cannot remove the default link name of the container")
        try:
            parent = self.get(parent_ref)
        except NotFound:
            raise NotFound(f"Cannot get parent /{parent_ref} for link name /{ref.strip('/')}") from None
        with self.cond(parent):
            parent.host_config["Links"] = links_mod.without(parent.host_config.get("Links"), parent.name, alias)
            self.save(parent)

    # -- remove / rename ---------------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        with self.cond(c):
            if c.state.Status == "removing":
                raise Conflict(f"removal of container {c.id} is already in progress")
            if c.state.Paused and not force:
                raise Conflict(f"You cannot remove a paused container {c.id}. Unpause and then stop the container "
                               "before attempting removal or force remove")
            if (c.state.Running or c.state.Restarting) and not force:
                state = "restarting" if c.state.Restarting else "running"
                raise Conflict(f"You cannot remove a {state} container {c.id}. Stop the container before "
                               "attempting removal or force remove")
            self._cancel_timer(c.id)
            c.state.Restarting = False
            with self._lock:
                if c.id in self._removing:
                    raise Conflict(f"removal of container {c.id} is already in progress")
                self._removing.add(c.id)
            if c.state.Running:
                self._stopping.add(c.id)
        try:
            self._remove_locked(c, volumes)
        finally:
            with self._lock:
                self._removing.discard(c.id)

    def _remove_locked(self, c: Container, volumes: bool) -> None:
        try:
            if c.state.Running:
                from dockyard.runtime.errors import OCIRuntimeError

                try:
                    self._signal(c, signal_mod.SIGKILL)
                    self.publish(c, "kill", signal=str(int(signal_mod.SIGKILL)))
                except OCIRuntimeError as e:
                    if e.kind not in ("not_exist", "state"):
                        raise  # else it exited already and its exit is being handled: wait for that
                if not self.wait_exit(c, 30.0):
                    raise SystemError_(f"Could not kill running container {c.id}, cannot remove")
        finally:
            with self._lock:
                self._stopping.discard(c.id)
        cv = self.cond(c)
        with cv:
            c.state.Status = "removing"
            self.save(c)  # a crash from here on: restore finishes the removal (containers/recovery.py)
            t0 = time.perf_counter()
            self.net.forget(c)
            failpoint.hit("container.remove.network-released")
            t1 = time.perf_counter()
            self.snapshots.remove(c.id)
            t2 = time.perf_counter()
            log.debug("remove %s: network %.1f ms, snapshot %.1f ms", c.id[:12], (t1 - t0) * 1e3, (t2 - t1) * 1e3)
            remove_tree(self.state_dir(c.id), trash_dir(self.cfg.data_root))
            self.store.delete(c.id)
            self.directory.discard(c.id)
            with self._lock:
                self._clocks.pop(c.id, None)
                self._backoff.pop(c.id, None)
            c.state.Status = "removed"
            cv.notify_all()
        if volumes:
            for name in c.anon_volumes.values():
                try:
                    self.volumes.remove(name)
                except Exception:  # noqa: BLE001 - a volume another container uses stays, like docker
                    pass
        with self._removed:
            self._removed.notify_all()
        self.publish(c, "destroy")

    def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        new = create_mod.validate_name(new_name)
        if new == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        old = c.name
        self.store.rename(c.id, new)
        c.name = new
        self.net.renamed(c)
        self.publish(c, "rename", oldName="/" + old)

    # -- wait ----------------------------------------------------------------------------------------
    def wait(self, c: Container, condition: str = "not-running",
             alive: Callable[[], bool] | None = None) -> tuple[int, str]:
        """Block per docker's wait conditions; returns (exit code, error message)."""
        if condition == "removed":
            with self._removed:
                while self.directory.contains(c.id):
                    self._removed.wait(1.0)
                    if alive is not None and not alive():
                        break
            return c.state.ExitCode, c.state.Error
        cv = self.cond(c)
        with cv:
            if condition == "next-exit" or c.state.Running or c.state.Restarting:
                gen = c.state.FinishedAt
                while c.state.FinishedAt == gen or c.state.Running:
                    cv.wait(1.0)
                    if alive is not None and not alive():
                        break
            return c.state.ExitCode, c.state.Error

    # -- update -------------------------------------------------------------------------------------
    def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        c = self.get(ref)
        with self.cond(c):
            hc = create_mod.updated_host_config(c.host_config, body)
            add, remove = create_mod.port_changes(body)
            if add or remove:
                hc["PortBindings"] = create_mod.merged_port_bindings(hc.get("PortBindings") or {}, add, remove,
                                                                     strict=not c.state.Running)
            if c.state.Running and (add or remove):
                self.net.update_ports(c, add, remove)  # checks and programs them; refuses a taken port
            if c.state.Running and create_mod.changes_resources(body):
                self.runtime_for(c).update(c.id, spec_mod.resources(hc))
            c.host_config = hc
            self.save(c)
        self.publish(c, "update")
        return []

    # -- boot and shutdown (containers/boot.py) -----------------------------------------------------
    def settle(self) -> None:
        """Before the network's start-up reconcile: adopt, or kill and clean, what crashed starts left."""
        from dockyard.containers import recovery

        recovery.settle_interrupted(self)

    def restore(self) -> None:
        from dockyard.containers import boot

        boot.restore(self)

    def shutdown(self, live_restore: bool = True) -> None:
        from dockyard.containers import boot

        boot.shutdown(self, live_restore)

    def attach_shim(self, c: Container, shim: ShimClient) -> None:
        """Follow a (re)connected shim: its exit lands in _on_exit."""
        c.shim = shim
        shim.on_exit(lambda status: self._on_exit(c, shim, status))

    def shim_config(self, c: Container) -> ShimConfig:
        from dockyard.containers.shim_client import ShimConfig

        state_dir = self.state_dir(c.id)
        lc = c.host_config.get("LogConfig") or {}
        return ShimConfig(
            container_id=c.id, bundle=state_dir, state_dir=state_dir, runtime=c.runtime,
            runtime_root=self.runtime_root(c.runtime), tty=bool(c.config.get("Tty")),
            open_stdin=bool(c.config.get("OpenStdin")), stdin_once=bool(c.config.get("StdinOnce")),
            log_driver=lc.get("Type") or self.cfg.log_driver,
            log_opts={**self.cfg.log_opts, **(lc.get("Config") or {})}, log_path=self.log_path(c))

    # -- small reads --------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        cs = self.all()
        running = sum(1 for c in cs if c.state.Running and not c.state.Paused)
        paused = sum(1 for c in cs if c.state.Paused)
        return {"total": len(cs), "running": running, "paused": paused, "stopped": len(cs) - running - paused}

    def changes(self, ref: str) -> list[dict[str, Any]]:
        c = self.get(ref)
        # the engine's own files are hidden as docker's init layer hides them; mount points show, as in docker
        return list(self.snapshots.changes(c.id, mounts_mod.ENGINE_PATHS))

    def size(self, c: Container) -> int:
        try:
            return int(self.snapshots.size(c.id))
        except Exception:  # noqa: BLE001
            return 0

    def stats(self, ref: str, stream: bool, one_shot: bool) -> Iterator[bytes]:
        """`docker stats`: JSON samples from the container's cgroup, one or one a second while it runs."""
        c = self.get(ref)
        if stream and one_shot:
            raise InvalidParameter("cannot have stream=true and one-shot=true")
        cid, name = c.id, c.name
        path = c.cgroup_path or f"/{(c.host_config.get('CgroupParent') or self.cfg.cgroup_parent).strip('/')}/{cid}"

        def open_cg() -> Cgroup:
            from dockyard.runtime.cgroups import open_cgroup

            return open_cgroup(path, cid)

        def pid() -> int:
            found = self.directory.find(cid)
            return int(found.state.Pid or 0) if found is not None else 0

        def running() -> bool:
            found = self.directory.find(cid)
            return bool(found is not None and found.state.Running)

        return stats_stream(open_cg, pid, cid, name, running, stream, one_shot)

    def export(self, ref: str) -> Iterator[bytes]:
        """`docker export`: the container's whole filesystem as a tar stream."""
        return self.snapshots.export(self.get(ref).id)

    def commit(self, ref: str, repo: str = "", tag: str = "", comment: str = "", author: str = "",
               changes: list[str] | None = None, config: dict[str, Any] | None = None) -> ImageRecord:
        """`docker commit`: the container's writable layer over its image, as a new image (and its event)."""
        c = self.get(ref)
        img = self.images.commit(c.id, c.image_id, dict(c.config), self.snapshots.diff_tar(c.id), repo, tag,
                                 comment, author, changes, config)
        tags = img.repo_tags
        self.events.publish("container", "commit", c.id,
                            {"comment": comment, "imageID": img.id, "imageRef": tags[0] if tags else img.id})
        return img

    def df_containers(self) -> list[dict[str, Any]]:
        from dockyard.containers.views import summary

        return [summary(self, c, with_size=True) for c in self.all()]

    def exec_ids(self, cid: str) -> list[str]:
        """Exec IDs of a container (the exec service keeps them)."""
        return list(self.execs.ids_for(cid))


__all__ = ["ContainerService", "State", "parse_signal"]
