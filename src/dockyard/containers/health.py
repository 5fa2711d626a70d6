"""Healthchecks: a probe thread per running container, docker's timings and state, plus `--health-on-failure`.

The probe runs through the exec service (the same path as `docker exec`); results land in State.Health with the
last five probes, and every status change is a `health_status: …` event. dockyard's extension acts on an
unhealthy container (restart, stop or kill) — what docker users have asked for in moby#28400.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from dockyard.containers.create import health_on_failure
from dockyard.containers.state import now_rfc3339

if TYPE_CHECKING:
    from dockyard.containers.ports import ExecRunner
    from dockyard.containers.service import ContainerService
    from dockyard.containers.state import Container

log = logging.getLogger("dockyard.health")

NS = 1_000_000_000
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096


def probe_command(test: list[str]) -> list[str] | None:
    """["CMD", args…] / ["CMD-SHELL", script] → argv; None for NONE or an empty test."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)


def _seconds(hc: dict[str, Any], key: str, default: float) -> float:
    v = hc.get(key)
    return int(v) / NS if v else default


class _Probe:
    def __init__(self, monitor: HealthMonitor, c: Container) -> None:
        self.monitor = monitor
        self.c = c
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"health-{c.id[:12]}", daemon=True)

    def run(self) -> None:
        c = self.c
        hc = c.config.get("Healthcheck") or {}
        cmd = probe_command(list(hc.get("Test") or []))
        if cmd is None:
            return
        interval = _seconds(hc, "Interval", DEFAULT_INTERVAL)
        timeout = _seconds(hc, "Timeout", DEFAULT_TIMEOUT)
        start_period = _seconds(hc, "StartPeriod", 0.0)
        start_interval = _seconds(hc, "StartInterval", DEFAULT_START_INTERVAL)
        retries = int(hc.get("Retries") or DEFAULT_RETRIES)
        started = time.monotonic()
        while True:
            in_start = time.monotonic() - started < start_period
            wait = start_interval if in_start and hc.get("StartInterval") else interval
            if self.stop.wait(wait):
                return
            in_start = time.monotonic() - started < start_period
            self.monitor.probe(c, cmd, timeout, retries, in_start, self)


class HealthMonitor:
    def __init__(self, containers: ContainerService, execs: ExecRunner) -> None:
        self.containers = containers
        self.execs = execs
        self._probes: dict[str, _Probe] = {}
        self._lock = threading.Lock()

    def watch(self, c: Container) -> None:
        hc = c.config.get("Healthcheck") or {}
        if probe_command(list(hc.get("Test") or [])) is None:
            return
        with self._lock:
            old = self._probes.pop(c.id, None)
            if old is not None:
                old.stop.set()
            p = self._probes[c.id] = _Probe(self, c)
        p.thread.start()

    def unwatch(self, c: Container) -> None:
        with self._lock:
            p = self._probes.pop(c.id, None)
        if p is not None:
            p.stop.set()

    def stop_all(self) -> None:
        with self._lock:
            probes = list(self._probes.values())
            self._probes.clear()
        for p in probes:
            p.stop.set()

    def probe(self, c: Container, cmd: list[str], timeout: float, retries: int, in_start: bool,
              owner: _Probe) -> None:
        start = now_rfc3339()
        try:
            code, out = self.execs.run(c.id, cmd, timeout)
            output = out[:MAX_OUTPUT].decode(errors="replace")
            if code == -1 and not output:
                output = f"Health check exceeded timeout ({timeout:g}s)"
        except TimeoutError:
            code, output = -1, f"Health check exceeded timeout ({timeout:g}s)"
        except Exception as e:  # noqa: BLE001 - a failing probe is a result, not a crash
            code, output = -1, str(e)
        if owner.stop.is_set():
            return
        entry = {"Start": start, "End": now_rfc3339(), "ExitCode": code, "Output": output}
        svc = self.containers
        cv = svc.cond(c)
        with cv:
            if not c.state.Running or c.state.Health is None:
                return
            health = dict(c.state.Health)
            old_status = health.get("Status", "starting")
            health["Log"] = (list(health.get("Log") or []) + [entry])[-MAX_LOG:]
            if code == 0:
                health["Status"] = "healthy"
                health["FailingStreak"] = 0
            elif not (in_start and old_status == "starting"):
                health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
                if health["FailingStreak"] >= retries:
                    health["Status"] = "unhealthy"
            c.state.Health = health
            svc.save(c)
            new_status = health["Status"]
        if new_status != old_status:
            svc.publish(c, f"health_status: {new_status}")
            if new_status == "unhealthy":
                self._act(c)

    def _act(self, c: Container) -> None:
        try:
            action = health_on_failure(c.config, c.host_config)
        except Exception:  # noqa: BLE001
            return
        if action == "none":
            return
        svc = self.containers
        log.info("container %s is unhealthy: %s (health-on-failure)", c.id[:12], action)

        def act() -> None:
            try:
                if action == "restart":
                    svc.restart(c.id, None, None)
                elif action == "stop":
                    svc.stop(c.id, None, None)
                elif action == "kill":
                    svc.kill(c.id, None)
            except Exception:  # noqa: BLE001
                log.exception("health-on-failure %s of %s failed", action, c.id)

        threading.Thread(target=act, daemon=True).start()
