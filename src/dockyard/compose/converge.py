"""Bringing the engine to the model: networks, volumes, images, then containers service by service.

Services run as parallel tasks; each first waits for what it depends on (started, healthy or completed
successfully, as its depends_on says), then creates, recreates or starts its containers. A container is
recreated only when its config hash or image changed, or a service it depends on was recreated; a second
``up`` with no change therefore only looks. Everything made carries the project's labels, so whatever
a failing ``up`` leaves, ``down`` removes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dockyard.client.api_client import APIError, Conflict
from dockyard.compose import labels as L
from dockyard.compose.convert import create_body, duration_ns, image_ref, replicas, secret_files
from dockyard.compose.engine import Engine
from dockyard.compose.errors import PULL_FAILURE, ComposeError
from dockyard.compose.parallel import Task, run_all
from dockyard.compose.progress import Progress
from dockyard.compose.project import Project


class UpOptions:
    """How up/create converge: recreate is diverged | force | never; build True (--build), False (--no-build)
    or None (when missing); pull always | missing | never | build, None for the service's pull_policy."""

    def __init__(self, recreate: str = "diverged", start: bool = True, build: bool | None = None,
                 pull: str | None = None, no_deps: bool = False, scale: dict[str, int] | None = None,
                 timeout: int | None = None, renew_anon_volumes: bool = False, remove_orphans: bool = False,
                 quiet_pull: bool = False) -> None:
        self.recreate = recreate
        self.start = start
        self.build = build
        self.pull = pull
        self.no_deps = no_deps
        self.scale = dict(scale or {})
        self.timeout = timeout
        self.renew_anon_volumes = renew_anon_volumes
        self.remove_orphans = remove_orphans
        self.quiet_pull = quiet_pull


class Converger:
    def __init__(self, engine: Engine, project: Project, progress: Progress) -> None:
        self.engine = engine
        self.project = project
        self.progress = progress
        self._image_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._snapshot: dict[str, list[dict[str, Any]]] | None = None  # service → its containers, read once
        self._fresh: dict[str, list[tuple[str, str]]] = {}  # service → (id, name) after this run converged it
        self._waits: dict[tuple[str, str], Task[None]] = {}  # one wait per dependency and condition
        self._looked: dict[tuple[str, str], dict[str, Any] | None] = {}  # prefetched networks/volumes

    def containers_of(self, service: str) -> list[dict[str, Any]]:
        """The service's containers as they were when this run began (one list call for the project)."""
        with self._lock:
            if self._snapshot is None:
                snap: dict[str, list[dict[str, Any]]] = {}
                for c in self.engine.containers(self.project.name):
                    snap.setdefault(c["Labels"].get(L.SERVICE, ""), []).append(c)
                self._snapshot = snap
            return list(self._snapshot.get(service, []))

    # -- looking first ------------------------------------------------------------------------------
    def prefetch(self, services: list[str]) -> None:
        """The project's containers, images, networks and volumes looked up at once (read-only calls):
        what ``up`` decides from them is then decided in the same order, without a round trip each."""
        refs = {image_ref(self.project, s, self.project.services[s]) for s in services}
        nets = {self.project.networks[k]["name"] for s in services
                for k in (self.project.services[s].get("networks") or {}) if k in self.project.networks}
        vols = {self.project.volumes[v["source"]]["name"] for s in services
                for v in self.project.services[s].get("volumes") or []
                if v.get("type") == "volume" and v.get("source") in self.project.volumes}
        self.containers_of("")  # first, alone: the client's API version is settled by then (one ping)
        jobs: list[Any] = [_bound(self.image_id, ref) for ref in sorted(refs)]
        jobs += [_bound(self._look, ("network", name)) for name in sorted(nets)]
        jobs += [_bound(self._look, ("volume", name)) for name in sorted(vols)]
        run_all(lambda job: job(), jobs)

    def _look(self, key: tuple[str, str]) -> None:
        kind, name = key
        found = self.engine.network(name) if kind == "network" else self.engine.volume(name)
        with self._lock:
            self._looked[key] = found

    def _network(self, name: str) -> dict[str, Any] | None:
        """The network as prefetched (once), else asked now."""
        with self._lock:
            if ("network", name) in self._looked:
                return self._looked.pop(("network", name))
        return self.engine.network(name)

    def _volume(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            if ("volume", name) in self._looked:
                return self._looked.pop(("volume", name))
        return self.engine.volume(name)

    # -- networks and volumes ---------------------------------------------------------------------
    def ensure_networks(self, services: list[str]) -> None:
        needed = {n for s in services for n in (self.project.services[s].get("networks") or {})}
        for key in sorted(needed):
            net = self.project.networks[key]
            name = net["name"]
            if net.get("external"):
                if self._network(name) is None:
                    raise ComposeError(f"network {name} declared as external, but could not be found")
                continue
            if self._network(name) is not None:
                continue
            body: dict[str, Any] = {
                "Name": name, "Driver": net.get("driver") or "bridge", "Options": net.get("driver_opts") or {},
                "Internal": bool(net.get("internal")), "EnableIPv6": bool(net.get("enable_ipv6")),
                "Attachable": bool(net.get("attachable")), "CheckDuplicate": True,
                "Labels": {**(net.get("labels") or {}), L.NETWORK: key, L.PROJECT: self.project.name,
                           L.VERSION: L.COMPOSE_VERSION},
            }
            ipam = net.get("ipam") or {}
            if ipam:
                body["IPAM"] = {"Driver": ipam.get("driver") or "default", "Options": ipam.get("options") or {},
                                "Config": [{k2: v for k, v in c.items() for k2 in [_IPAM_KEYS.get(k, k)]}
                                           for c in ipam.get("config") or []]}
            self.progress.event("Network", name, "Creating")
            try:
                self.engine.create_network(body)
            except Conflict:
                if self.engine.network(name) is not None:
                    continue  # made meanwhile by a parallel up
                self.progress.event("Network", name, "Error")
                raise
            except APIError:
                self.progress.event("Network", name, "Error")
                raise
            self.progress.event("Network", name, "Created")

    def ensure_volumes(self, services: list[str]) -> None:
        needed = set()
        for s in services:
            for v in self.project.services[s].get("volumes") or []:
                if v.get("type") == "volume" and v.get("source") in self.project.volumes:
                    needed.add(v["source"])
        for key in sorted(needed):
            vol = self.project.volumes[key]
            name = vol["name"]
            if vol.get("external"):
                if self._volume(name) is None:
                    raise ComposeError(f'external volume "{name}" not found')
                continue
            if self._volume(name) is not None:
                continue
            self.progress.event("Volume", name, "Creating")
            self.engine.create_volume({"Name": name, "Driver": vol.get("driver") or "local",
                                       "DriverOpts": vol.get("driver_opts") or {},
                                       "Labels": {**(vol.get("labels") or {}), L.VOLUME: key,
                                                  L.PROJECT: self.project.name, L.VERSION: L.COMPOSE_VERSION}})
            self.progress.event("Volume", name, "Created")

    # -- images -------------------------------------------------------------------------------------
    def ensure_images(self, services: list[str], opts: UpOptions) -> None:
        for s in services:
            svc = self.project.services[s]
            ref = image_ref(self.project, s, svc)
            policy = opts.pull or str(svc.get("pull_policy") or "missing")
            if policy == "if_not_present":
                policy = "missing"
            has_build = bool(svc.get("build"))
            if has_build and (opts.build is True or policy == "build"):
                self.build(s)
                continue
            present = bool(self.image_id(ref))
            if policy == "always" and not (has_build and present):
                self.pull(s, ref)
            elif not present:
                if has_build:
                    if opts.build is False:
                        raise ComposeError(f"service {s!r} image {ref!r} not found and --no-build set")
                    self.build(s)
                elif policy == "never":
                    raise ComposeError(f"Error response from daemon: No such image: {ref}", PULL_FAILURE)
                else:
                    self.pull(s, ref)

    def pull(self, service: str, ref: str, quiet: bool = False) -> None:
        svc = self.project.services[service]
        self.progress.event("Image", ref, "Pulling")
        try:
            for msg in self.engine.pull(ref, svc.get("platform")):
                if isinstance(msg, dict) and msg.get("error"):
                    self.progress.event("Image", ref, "Error")
                    raise ComposeError(str(msg["error"]), PULL_FAILURE)
        except APIError as e:
            self.progress.event("Image", ref, "Error")
            raise ComposeError(f"Error response from daemon: {e.message}", PULL_FAILURE) from None
        self.forget_images()
        self.progress.event("Image", ref, "Pulled")

    def build(self, service: str) -> str:
        from dockyard.compose.build import build_image  # tar and tempfile only when something is built

        iid = build_image(self.engine, self.project, service, self.progress)
        self.forget_images()
        return iid

    def forget_images(self) -> None:
        """Image IDs are looked up again (after a rebuild)."""
        with self._lock:
            self._image_ids.clear()

    def image_id(self, ref: str) -> str:
        with self._lock:
            if ref in self._image_ids:
                return self._image_ids[ref]
        info = self.engine.image(ref)
        iid = str(info["Id"]) if info else ""
        with self._lock:
            self._image_ids[ref] = iid
        return iid

    # -- containers ---------------------------------------------------------------------------------
    def converge(self, services: list[str], opts: UpOptions) -> dict[str, list[str]]:
        """Create/recreate/start the containers of ``services`` in dependency order, in parallel.

        A service's containers are created once its dependencies are started; only their start waits for
        the dependencies' conditions (healthy, completed), so creating overlaps that wait.
        """
        order = self.project.ordered(services)
        futures: dict[str, Task[bool]] = {}
        result: dict[str, list[str]] = {}
        for s in order:  # dependencies first: a task only waits for tasks already made
            futures[s] = Task(self._task_of(s, opts, futures, result))
        errors = []
        for s in order:
            try:
                futures[s].result()
            except BaseException as e:  # noqa: BLE001 - the first error is reported, the others waited for
                errors.append(e)
        if errors:
            raise errors[0]
        if opts.remove_orphans:
            self.remove_orphans(opts.timeout)
        return result

    def _task_of(self, s: str, opts: UpOptions, futures: dict[str, Task[bool]],
                 result: dict[str, list[str]]) -> Any:
        return lambda: self._service_task(s, opts, futures, result)

    def _service_task(self, s: str, opts: UpOptions, futures: dict[str, Task[bool]],
                      result: dict[str, list[str]]) -> bool:
        deps = self.project.dependencies(s)
        dep_recreated = False
        for dep in deps:
            fut = futures.get(dep)
            if fut is not None:
                try:
                    dep_recreated = fut.result() or dep_recreated
                except BaseException:
                    raise ComposeError(f"dependency failed to start: service {dep!r} failed") from None
        waits = []  # every dependency's condition awaited at once: the slowest one sets the start
        for dep, spec in deps.items():
            condition = str((spec or {}).get("condition") or "service_started")
            if (opts.start and condition != "service_started" and dep in self.project.services
                    and (dep in futures or not opts.no_deps)):
                waits.append(self.condition_task(dep, condition, bool((spec or {}).get("required", True))))
        recreated, todo = self.create_service(s, opts, dep_recreated)
        errors = []
        for task in waits:
            try:
                task.result()
            except BaseException as e:  # noqa: BLE001 - the first failed condition (in depends_on order) is told
                errors.append(e)
        if errors:
            raise errors[0]
        result[s] = self.start_service(s, todo, opts)
        return recreated

    def wait_condition(self, service: str, condition: str, required: bool = True) -> None:
        """Block until ``service`` meets ``condition``."""
        self.condition_task(service, condition, required).result()

    def condition_task(self, service: str, condition: str, required: bool = True) -> Task[None]:
        """The wait for ``service`` to meet ``condition``, begun now; dependents of one service share it."""
        key = (service, condition)
        with self._lock:
            task = self._waits.get(key)
            if task is None:
                task = self._waits[key] = Task(lambda: self._wait_condition(service, condition, required))
        return task

    def _wait_condition(self, service: str, condition: str, required: bool) -> None:
        if condition == "service_started":
            return
        targets = self._fresh.get(service)
        if targets is None:
            targets = [(c["Id"], c["Names"][0].lstrip("/")) for c in self.engine.containers(self.project.name,
                                                                                             service)]
        if not targets:
            if required:
                raise ComposeError(f"dependency failed to start: no container of service {service!r}")
            return
        for cid, name in targets:
            self.progress.event("Container", name, "Waiting")
            if condition == "service_healthy":
                self._wait_healthy(cid, name)
                self.progress.event("Container", name, "Healthy")
            elif condition == "service_completed_successfully":
                code = self.engine.wait(cid)
                if code != 0:
                    raise ComposeError(f'service "{service}" didn\'t complete successfully: exit {code}')
                self.progress.event("Container", name, "Exited")

    def _wait_healthy(self, cid: str, name: str) -> None:
        """Until the container is healthy: told by its events (health_status, die), not by polling.

        The event stream replays from a second ago, so a change between subscribing and the first
        inspect is not missed; a daemon that cannot stream events is polled instead.
        """
        try:
            stream = self.engine.container_events(cid, ["health_status", "die", "destroy"], since=time.time() - 1)
        except APIError:
            self._poll_healthy(cid, name)
            return
        try:
            if self._health_verdict(cid, name):
                return
            for ev in stream.iter_json():
                action = str((ev or {}).get("Action") or (ev or {}).get("status") or "")
                if action == "health_status: healthy":
                    return
                if action.startswith("health_status") or action in ("die", "destroy"):
                    if self._health_verdict(cid, name):
                        return
            self._poll_healthy(cid, name)  # the stream ended (daemon restart): fall back to asking
        finally:
            stream.close()

    def _health_verdict(self, cid: str, name: str) -> bool:
        """True once healthy; raises when it cannot become healthy; False while starting."""
        info = self.engine.inspect(cid) or {}
        state = info.get("State") or {}
        health = state.get("Health")
        if health is None:
            raise ComposeError(f"dependency failed to start: container {name} has no healthcheck configured")
        status = health.get("Status")
        if status == "healthy":
            return True
        if status == "unhealthy":
            raise ComposeError(f"dependency failed to start: container {name} is unhealthy")
        if not state.get("Running") and state.get("Status") in ("exited", "dead", "removing") or not info:
            raise ComposeError(f"dependency failed to start: container {name} exited "
                               f"({state.get('ExitCode', 0)})")
        return False

    def _poll_healthy(self, cid: str, name: str) -> None:
        delay = 0.05
        while not self._health_verdict(cid, name):
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def converge_service(self, s: str, opts: UpOptions, dep_recreated: bool = False) -> tuple[bool, list[str]]:
        """Create/recreate the service's containers, then start them (no waiting for dependencies)."""
        recreated, todo = self.create_service(s, opts, dep_recreated)
        return recreated, self.start_service(s, todo, opts)

    def create_service(self, s: str, opts: UpOptions,
                       dep_recreated: bool = False) -> tuple[bool, list[tuple[str, str, str]]]:
        """The create half of converging: (recreated?, [(id, name, what start must do)]).

        What start must do: "start" (created or stopped), "unpause", or "" (already running).
        """
        svc = self.project.services[s]
        want = opts.scale.get(s, replicas(svc))
        if svc.get("container_name") and want > 1:
            raise ComposeError(f'services.{s}: can\'t set container_name and {s} as container name must be '
                               "unique: invalid compose project")
        existing = self.containers_of(s)
        digest = L.config_hash(svc)
        ref = image_ref(self.project, s, svc)
        iid = self.image_id(ref)
        by_number: dict[int, dict[str, Any]] = {}
        recreated = False
        for c in existing:
            n = int(c["Labels"].get(L.NUMBER, "0") or 0)
            if n in by_number or n < 1 or n > want:
                self._remove(c, opts.timeout)
                continue
            by_number[n] = c
        todo: list[tuple[str, str, str]] = []
        for n in range(1, want + 1):
            current = by_number.get(n)
            name = str(svc.get("container_name") or L.container_name(self.project.name, s, n))
            if current is None:
                todo.append((self.create_container(s, n, name, digest, iid), name, "start"))
                recreated = True
                continue
            c = current
            stale = (c["Labels"].get(L.CONFIG_HASH) != digest or (iid and c["Labels"].get(L.IMAGE) != iid)
                     or dep_recreated)
            if opts.recreate == "force" or (opts.recreate == "diverged" and stale):
                cname = c["Names"][0].lstrip("/")
                self.progress.event("Container", cname, "Recreate")
                self._stop_remove(c, opts.timeout, quiet=True, keep_anon=not opts.renew_anon_volumes)
                cid = self.create_container(s, n, name, digest, iid, announce=False)
                self.progress.event("Container", name, "Recreated")
                todo.append((cid, name, "start"))
                recreated = True
            else:
                state = c.get("State")
                todo.append((c["Id"], name, "" if state == "running" else "unpause" if state == "paused"
                             else "start"))
        return recreated, todo

    def start_service(self, s: str, todo: list[tuple[str, str, str]], opts: UpOptions) -> list[str]:
        """The start half: start what is not running (when starting at all); the containers' ids."""
        for cid, name, action in todo:
            if not opts.start:
                continue
            if action == "unpause":
                self.engine.unpause(cid)
            elif action == "start":
                self.progress.event("Container", name, "Starting")
                self.engine.start(cid)
                self.progress.event("Container", name, "Started")
            else:
                self.progress.event("Container", name, "Running")
        self._fresh[s] = [(cid, name) for cid, name, _a in todo]
        return [cid for cid, _n, _a in todo]

    def create_container(self, s: str, number: int, name: str, digest: str, iid: str, announce: bool = True,
                         oneoff: bool = False, overrides: dict[str, Any] | None = None) -> str:
        svc = self.project.services[s]
        body = create_body(self.project, s, svc, number, name, iid, digest, oneoff=oneoff,
                           resolve_container=self.running_name)
        if overrides:
            for k, v in overrides.items():
                if k == "HostConfig":
                    body["HostConfig"].update(v)
                else:
                    body[k] = v
        platform = body.pop("__platform__", None)
        if announce:
            self.progress.event("Container", name, "Creating")
        try:
            cid = self.engine.create(name, body, platform)
        except APIError as e:
            self.progress.event("Container", name, "Error")
            raise ComposeError(f"Error response from daemon: {e.message}") from None
        uploads = secret_files(self.project, svc).uploads
        if uploads:
            self.engine.put_archive(cid, "/", _tar_of(uploads))
        if announce:
            self.progress.event("Container", name, "Created")
        return cid

    def running_name(self, service: str) -> str:
        """The container a link / volumes_from / network_mode: service: refers to (its first replica)."""
        cs = self.engine.containers(self.project.name, service)
        if cs:
            return str(cs[0]["Names"][0].lstrip("/"))
        svc = self.project.services.get(service) or {}
        return str(svc.get("container_name") or L.container_name(self.project.name, service, 1))

    def _stop_remove(self, c: dict[str, Any], timeout: int | None, quiet: bool = False,
                     keep_anon: bool = True) -> None:
        name = c["Names"][0].lstrip("/")
        if c.get("State") in ("running", "paused", "restarting"):
            if not quiet:
                self.progress.event("Container", name, "Stopping")
            self.engine.stop(c["Id"], timeout if timeout is not None else _stop_timeout(c))
            if not quiet:
                self.progress.event("Container", name, "Stopped")
        if not quiet:
            self.progress.event("Container", name, "Removing")
        self.engine.remove(c["Id"], force=True, volumes=not keep_anon)
        if not quiet:
            self.progress.event("Container", name, "Removed")

    def _remove(self, c: dict[str, Any], timeout: int | None) -> None:
        self._stop_remove(c, timeout, keep_anon=False)

    def remove_orphans(self, timeout: int | None) -> None:
        known = set(self.project.services) | set(self.project.disabled)
        for c in self.engine.containers(self.project.name, oneoff=None):
            if c["Labels"].get(L.SERVICE) not in known:
                self._stop_remove(c, timeout, keep_anon=False)

    def orphans(self) -> list[str]:
        known = set(self.project.services) | set(self.project.disabled)
        self.containers_of("")
        snap = self._snapshot or {}
        return [c["Names"][0].lstrip("/") for s, cs in sorted(snap.items()) if s not in known for c in cs]

    def wait_running(self, ids: list[str], timeout: float | None) -> None:
        """--wait: every container running, and healthy where it has a healthcheck."""
        deadline = time.monotonic() + timeout if timeout else None
        for cid in ids:
            while True:
                info = self.engine.inspect(cid) or {}
                state = info.get("State") or {}
                name = str(info.get("Name", cid)).lstrip("/")
                health = (state.get("Health") or {}).get("Status")
                if state.get("Status") in ("exited", "dead"):
                    raise ComposeError(f"container {name} exited ({state.get('ExitCode', 0)})")
                if health == "unhealthy":
                    raise ComposeError(f"container {name} is unhealthy")
                if state.get("Running") and health in (None, "healthy"):
                    self.progress.event("Container", name, "Healthy" if health else "Running")
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise ComposeError(f"timeout waiting for container {name}")
                time.sleep(0.1)


def _bound(fn: Any, arg: Any) -> Any:
    return lambda: fn(arg)


_IPAM_KEYS = {"subnet": "Subnet", "ip_range": "IPRange", "gateway": "Gateway", "aux_addresses": "AuxiliaryAddresses"}


def _stop_timeout(c: dict[str, Any]) -> int | None:
    return None


def _tar_of(files: list[tuple[str, bytes, int]]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for path, content, mode in files:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(path.strip("/"))
            info.size = len(content)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def parse_timeout(value: Any) -> int | None:
    if value is None:
        return None
    return duration_ns(value) // 1_000_000_000
