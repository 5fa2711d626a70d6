"""Start-up recovery of container operations a daemon crash interrupted, before anything else looks at them.

A ``kill -9`` of the daemon can land anywhere in a start: after the rootfs was mounted, after the network was
prepared, after the spec was written, after the shim was launched but before the record said "running". The
shim is detached from the daemon and finishes the start on its own, so the host may hold a running container
whose record says "created" with Pid 0. The rule, applied to every container whose record does not say
running, is deterministic:

* **Adopt** when a shim serves the container (``shim.pid``/``shim.sock`` in its state dir and the shim answers
  ``status``, waiting for an in-flight start to finish, up to ``SETTLE_TIMEOUT``): the start happened, so the
  record becomes what the shim knows (running, its init's pid, the mounts of the plan). The normal live
  restore then follows it (an exit while the daemon was down is recorded as usual, restart policy included).
* **Kill and clean** otherwise: a shim that never answers is killed, the runtime deletes whatever it created
  (processes, cgroup, state), the stale shim files go; the network's and the snapshot's start-up reconciles then
  remove the namespace, links, rules and mount nothing running owns. The record keeps its previous state.

A restart is a stop then a start (each covered); a stop interrupted after its signal is seen by the live
restore as the exit it caused. An exec whose start a crash interrupted lives on in its own shim (exec records
are in memory, and forgotten at restart as dockerd forgets them): restore follows every exec shim or exit file
left in a live container's state dir (``follow_execs``), so its process is reaped by its shim, its exit is
logged and published (``exec_die``), and its files go. This runs before the network service's start-up reconcile (which keeps what
live containers use), so an adopted container keeps its network.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from typing import TYPE_CHECKING

from dockyard.containers import mounts as mounts_mod
from dockyard.containers.state import now_rfc3339
from dockyard.runtime.shim.protocol import PID_NAME, SOCKET_NAME

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService
    from dockyard.containers.state import Container

log = logging.getLogger("dockyard.containers")

SETTLE_TIMEOUT = 30.0  # an in-flight start's shim answers within this, or is killed
_EXEC_FILE = re.compile(r"^exec-([0-9a-f]{12})\.(?:sock|json)$")  # protocol.exec_names


def settle_interrupted(svc: ContainerService) -> None:
    """Adopt or kill-and-clean every container a crash left between "not running" and running."""
    for c in svc.all():
        if c.state.Running or c.state.Paused:
            continue
        state_dir = svc.state_dir(c.id)
        if os.path.exists(os.path.join(state_dir, PID_NAME)) or os.path.exists(os.path.join(state_dir, SOCKET_NAME)):
            _settle_shim(svc, c, state_dir)
        elif os.path.isdir(os.path.join(svc.runtime_root(c.runtime), c.id)):
            _runtime_delete(svc, c)  # a shim killed in the middle of its create: the runtime's leftovers


def _settle_shim(svc: ContainerService, c: Container, state_dir: str) -> None:
    from dockyard.containers.shim_client import probe_status

    deadline = time.monotonic() + SETTLE_TIMEOUT
    pid = _shim_pid(state_dir)
    while True:
        reply = probe_status(state_dir, timeout=1.0)
        if reply is not None:
            _adopt(svc, c, int(reply.get("pid") or 0))
            return
        if pid is None or not _alive(pid) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    log.warning("container %s: an interrupted start left a shim that does not answer; killing and cleaning",
                c.id[:12])
    if pid is not None and _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _runtime_delete(svc, c)
    for name in (PID_NAME, SOCKET_NAME):
        try:
            os.unlink(os.path.join(state_dir, name))
        except OSError:
            pass


def _adopt(svc: ContainerService, c: Container, pid: int) -> None:
    log.warning("container %s: adopting the container an interrupted start left running (pid %d)",
                c.id[:12], pid)
    try:
        plan = mounts_mod.plan(c.host_config, c.config, c.anon_volumes,
                               svc.volumes.resolve_for if svc.volumes is not None else None, c.id)
        c.mounts = plan.inspect
    except Exception:  # noqa: BLE001 - inspect's Mounts only; the container runs either way
        log.exception("cannot rebuild the mounts of %s", c.id)
    c.has_been_started = True
    c.state.set_running(pid, now_rfc3339())
    svc.save(c)


def _runtime_delete(svc: ContainerService, c: Container) -> None:
    try:
        svc.runtime_for(c).delete(c.id, force=True)
    except Exception as exc:  # noqa: BLE001 - nothing there is fine
        log.debug("runtime delete of %s: %s", c.id, exc)


def _shim_pid(state_dir: str) -> int | None:
    try:
        with open(os.path.join(state_dir, PID_NAME)) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def finish_interrupted(svc: ContainerService) -> None:
    """After the network's start-up: finish the creates and removals a crash cut short.

    A removal is rolled forward (its record was marked "removing" before anything was torn down); a create
    whose record was written but whose snapshot was not is completed (the snapshot prepared, its volumes made),
    or dropped when its image is gone; a snapshot without a container record (a failed create's undo that a
    crash cut short) is removed.
    """
    for c in svc.all():
        if c.state.Status == "removing":
            log.warning("container %s: finishing a removal a crash interrupted", c.id[:12])
            c.state.Status = "dead"
            try:
                svc.remove(c.id, force=True)
            except Exception:  # noqa: BLE001 - stays "dead"; a later rm retries
                log.exception("cannot finish the removal of %s", c.id)
            continue
        if svc.snapshots is None or c.state.Running or c.state.Paused:
            continue
        if svc.snapshots.image_of(c.id) is None:
            _finish_create(svc, c)
    if svc.snapshots is not None:
        known = {c.id for c in svc.all()}
        for cid in svc.snapshots.ids():
            if cid not in known:
                log.warning("removing the snapshot of %s, which has no container record", cid[:12])
                try:
                    svc.snapshots.remove(cid)
                except Exception:  # noqa: BLE001
                    log.exception("cannot remove the snapshot of %s", cid)


def _finish_create(svc: ContainerService, c: Container) -> None:
    from dockyard.errors import NotFound

    log.warning("container %s: completing a create a crash interrupted", c.id[:12])
    try:
        os.makedirs(svc.state_dir(c.id), 0o710, exist_ok=True)
        assert svc.snapshots is not None
        svc.snapshots.prepare(c.id, c.image_id, svc.images.get_by_id(c.image_id).chain_ids)
        if svc.volumes is not None:
            for vol_name, target in mounts_mod.volume_names(c.host_config, c.config):
                vname = vol_name or c.anon_volumes.get(target, "")
                if vname:
                    svc.volumes.ensure(vname, anonymous=not vol_name)
    except NotFound:
        log.warning("container %s: its image is gone; dropping the record", c.id[:12])
        try:
            svc.remove(c.id, force=True)
        except Exception:  # noqa: BLE001
            log.exception("cannot drop the record of %s", c.id)


def follow_execs(svc: ContainerService, c: Container) -> None:
    """Follow the execs a crashed daemon left in live container ``c``: each on its own thread, until it exits."""
    try:
        names = os.listdir(svc.state_dir(c.id))
    except OSError:
        return
    for short in sorted({m.group(1) for n in names if (m := _EXEC_FILE.match(n))}):
        threading.Thread(target=_follow_exec, args=(svc, c, short), name=f"exec-left-{short}", daemon=True).start()


def _follow_exec(svc: ContainerService, c: Container, short: str) -> None:
    from dockyard.containers.shim_client import ShimError
    from dockyard.runtime.shim.protocol import exec_names

    shim = c.shim
    if shim is None:
        return
    try:
        code = shim.wait_exec(short)  # a live exec shim answers once its process exited; a gone one left the code
    except ShimError:  # neither a shim nor an exit file: a shim killed before it wrote its exit down
        log.warning("container %s: exec %s, left by a daemon crash, is gone without an exit code", c.id[:12],
                    short)
        code = 137
    except Exception:  # noqa: BLE001 - never let a leftover break the restore
        log.exception("cannot follow exec %s of %s", short, c.id[:12])
        return
    sock_name, _exit_name = exec_names(short)
    try:
        os.unlink(os.path.join(svc.state_dir(c.id), sock_name))
    except OSError:
        pass
    log.warning("container %s: exec %s, left by a daemon crash, exited with code %d", c.id[:12], short, code)
    svc.publish(c, "exec_die", execID=short, exitCode=str(code))
