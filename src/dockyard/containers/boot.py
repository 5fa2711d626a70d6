"""Daemon start-up and shut-down for containers: live restore, exits recorded while down, start at boot."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from dockyard.containers import restart as restart_mod
from dockyard.errors import NotModified

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService

log = logging.getLogger("dockyard.containers")


def restore(svc: ContainerService) -> None:
    """Reconnect to live shims, record exits that happened while down, start containers that should run."""
    from dockyard.containers.recovery import finish_interrupted, follow_execs
    from dockyard.containers.shim_client import ShimClient, prewarm

    finish_interrupted(svc)
    for c in svc.all():
        if c.state.Running or c.state.Paused:
            shim = ShimClient.connect(svc.shim_config(c))
            if shim is None:
                log.warning("container %s lost its shim while the daemon was down", c.id)
                with svc.cond(c):
                    svc.undo_start(c, True, True)
                    c.state.set_stopped(255, error="container's shim is gone")
                    svc.save(c)
            else:
                if shim.pid:
                    c.state.Pid = shim.pid
                svc.attach_shim(c, shim)
                follow_execs(svc, c)
                if shim.pid:
                    svc.health.watch(c)
                continue  # an exit while down is handled by the shim's exit callback, restart policy included
        _unmount_stale(svc, c.id)
        if c.state.Restarting or restart_mod.start_at_boot(c.host_config.get("RestartPolicy") or {},
                                                             c.has_been_started, c.manually_stopped):
            c.state.Restarting = False
            threading.Thread(target=_boot_start, args=(svc, c.id), daemon=True).start()
    if not svc.cfg.live_restore:
        _stop_after_crash(svc)
    try:
        prewarm(svc.cfg.data_root)
    except Exception:  # noqa: BLE001 - the first start will try again
        log.exception("cannot pre-warm the shim launcher")


def _stop_after_crash(svc: ContainerService) -> None:
    """Without live restore, containers a crashed daemon left running are stopped at restore, as dockerd does
    (its stop signal, then SIGKILL after the stop timeout), then started again where their restart policy says
    so; each on its own thread, so start-up does not wait for their stop timeouts."""
    for c in svc.all():
        if c.state.Running and c.shim is not None:
            log.info("live restore is off: stopping %s, left running by a daemon that did not stop cleanly", c.id)
            threading.Thread(target=_stop_then_policy, args=(svc, c.id), daemon=True).start()


def _stop_then_policy(svc: ContainerService, cid: str) -> None:
    try:
        c = svc.get(cid)
        with svc._lock:  # noqa: SLF001 - same package: the exit handler must not apply the policy itself
            svc._stopping.add(cid)  # noqa: SLF001
        try:
            svc._stop_running(c, None, None)  # noqa: SLF001
        finally:
            with svc._lock:  # noqa: SLF001
                svc._stopping.discard(cid)  # noqa: SLF001
        if restart_mod.start_at_boot(c.host_config.get("RestartPolicy") or {}, c.has_been_started,
                                     c.manually_stopped):
            svc.start(cid)
    except Exception:  # noqa: BLE001
        log.exception("stop after a crash of %s failed", cid)


def _unmount_stale(svc: ContainerService, cid: str) -> None:
    """A daemon killed in the middle of a start may have left the rootfs mounted."""
    try:
        svc.snapshots.unmount(cid)
    except Exception:  # noqa: BLE001
        log.exception("cannot unmount the stale rootfs of %s", cid)


def _boot_start(svc: ContainerService, cid: str) -> None:
    try:
        svc.start(cid)
    except NotModified:
        pass
    except Exception:  # noqa: BLE001
        log.exception("start at boot of %s failed", cid)


def shutdown(svc: ContainerService, live_restore: bool = True) -> None:
    """Daemon exit: containers keep running with live restore, else they are stopped first."""
    from dockyard.containers.shim_client import stop_launchers

    svc.cancel_all_timers()
    svc.health.stop_all()
    if not live_restore:
        threads = [threading.Thread(target=_quiet_stop, args=(svc, c.id)) for c in svc.all() if c.state.Running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    stop_launchers()
    svc.net.shutdown()


def _quiet_stop(svc: ContainerService, cid: str) -> None:
    try:
        svc.stop(cid, None, None)
    except NotModified:
        pass
    except Exception:  # noqa: BLE001
        log.exception("stop of %s at shutdown failed", cid)
