"""`dockyard daemon`: the composition root — config, services, API listeners, restore and shutdown."""

from __future__ import annotations

import grp
import importlib
import logging
import os
import pkgutil
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from dockyard.api.context import Services
from dockyard.api.router import Router
from dockyard.daemon.config import ConfigError, DaemonConfig, load, tcp_address
from dockyard.events.bus import EventBus
from dockyard.storage.db import StateDB

if TYPE_CHECKING:
    from dockyard.api.auth_hook import BearerGate
    from dockyard.auth.service import AuthService
    from dockyard.build.service import BuildService
    from dockyard.containers.service import ContainerService
    from dockyard.distribution.service import DistributionService
    from dockyard.images.service import ImageService
    from dockyard.storage.layers import LayerStore
    from dockyard.storage.snapshots import Snapshotter

log = logging.getLogger("dockyard.daemon")


def _socket_group(name: str) -> int | None:
    """The gid owning the API socket; the group is created like docker's own when missing."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    try:
        subprocess.run(["groupadd", "--system", name], check=True, capture_output=True)
        return grp.getgrnam(name).gr_gid
    except (OSError, subprocess.CalledProcessError, KeyError) as e:
        log.warning("cannot create group %s (%s): socket stays root-only", name, e)
        return None


def build_services(cfg: DaemonConfig) -> Services:
    """The composition root: every service built once, here, and handed what it needs as typed constructor
    arguments (no service installs itself into another). Each owns its tables in the one state database."""
    from dockyard.containers.directory import ContainerDirectory
    from dockyard.containers.execs import ExecService
    from dockyard.containers.service import ContainerService
    from dockyard.containers.store import ContainerStore
    from dockyard.images.service import ImageService
    from dockyard.networks.service import NetworkService
    from dockyard.storage.blobs import BlobStore
    from dockyard.storage.layers import LayerStore
    from dockyard.storage.snapshots import Snapshotter
    from dockyard.volumes.service import VolumeService

    os.makedirs(cfg.data_root, mode=0o711, exist_ok=True)
    os.makedirs(cfg.exec_root, mode=0o700, exist_ok=True)
    db = StateDB(os.path.join(cfg.data_root, "state.db"))
    events = EventBus()
    directory = ContainerDirectory(ContainerStore(db))  # what images, volumes and networks ask of containers
    layers = LayerStore(db, cfg.data_root, BlobStore(cfg.data_root))  # shared by images and snapshots
    images = ImageService(db, cfg.data_root, events, layers, directory)
    snapshots = Snapshotter(db, cfg.data_root, layers)
    networks = NetworkService(db, cfg.data_root, events, directory, bridge=cfg.bridge, bip=cfg.bip,
                              prefix=cfg.resource_prefix, iptables=cfg.iptables,
                              firewall_check_interval=cfg.firewall_check_interval, ip6tables=cfg.ip6tables,
                              ipv6=cfg.ipv6, fixed_cidr_v6=cfg.fixed_cidr_v6)
    volumes = VolumeService(db, cfg.data_root, events, directory)
    execs = ExecService(directory, snapshots, events)
    containers = ContainerService(cfg, directory, events, images, snapshots, networks, volumes, execs)
    distribution = _distribution(cfg, db, images, layers, events)
    builds = _build_service(cfg, db, images, containers, snapshots, distribution)
    return Services(config=cfg, db=db, events=events, images=images, containers=containers, execs=execs,
                    networks=networks, volumes=volumes, builds=builds, distribution=distribution)


def _build_service(cfg: DaemonConfig, db: StateDB, images: ImageService, containers: ContainerService,
                   snapshots: Snapshotter, distribution: DistributionService) -> BuildService:
    """The builder over the image store and the container service (its ports live in build/ports.py); a base
    image not in the store is pulled through the registry client."""
    from dockyard.build.service import BuildService
    from dockyard.daemon.build_adapters import ContainerBuildRunner, ImageBuildStore

    return BuildService(db, cfg.data_root, ImageBuildStore(images, distribution.pull_for_build),
                        ContainerBuildRunner(containers, snapshots, os.path.join(cfg.data_root, "build", "running")),
                        keep_storage=cfg.builder_keep_storage, gc_enabled=cfg.builder_gc)


def _distribution(cfg: DaemonConfig, db: StateDB, images: ImageService, layers: LayerStore,
                  events: EventBus) -> DistributionService:
    """The registry client over the image records, the shared layer store and its blobs."""
    from dockyard.distribution.metadata import BlobMetadata
    from dockyard.distribution.service import DistributionService
    from dockyard.distribution.transport import RegistrySettings

    settings = RegistrySettings(insecure_registries=list(cfg.insecure_registries), mirrors=list(cfg.registry_mirrors),
                                certs_dirs=list(cfg.registry_certs_dirs),
                                max_concurrent_downloads=cfg.max_concurrent_downloads,
                                max_concurrent_uploads=cfg.max_concurrent_uploads,
                                max_download_attempts=cfg.max_download_attempts)
    return DistributionService(settings, images.store, layers, layers.blobs, images, BlobMetadata(db), events)


def build_router(services: Services) -> Router:
    """Register every route module under dockyard.api.routes; one that fails to import stops the start-up
    (a typo must be an error at start, not a set of silent 404s)."""
    import dockyard.api.routes as routes_pkg

    router = Router()
    for info in sorted(pkgutil.iter_modules(routes_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"dockyard.api.routes.{info.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(router, services)
    return router


def build_auth(cfg: DaemonConfig, router: Router) -> tuple[AuthService | None, BearerGate | None, Router | None]:
    """Access control when configured: (the auth service, the API's request gate, the token listener's router).

    The token endpoint joins the API's routes unless it has an address of its own."""
    if not cfg.auth_enabled:
        return None, None, None
    from dockyard.api.auth_hook import OPEN_PATHS, BearerGate
    from dockyard.api.auth_routes import TOKEN_PATH, register_admin, register_token
    from dockyard.auth.clients import ClientsFileError
    from dockyard.auth.policy import PolicyError
    from dockyard.auth.service import AuthService, AuthSettings

    settings = AuthSettings(data_root=cfg.data_root, clients_file=cfg.auth_clients, policy_file=cfg.auth_policy,
                            external_issuer=cfg.auth_issuer, jwks_file=cfg.auth_jwks,
                            external_audience=cfg.auth_audience, token_ttl=cfg.auth_token_ttl)
    try:
        auth = AuthService(settings)
    except (ClientsFileError, PolicyError, ValueError) as e:
        raise ConfigError(f"auth: {e}") from None
    register_admin(router, auth)
    token_router: Router | None = None
    open_paths = OPEN_PATHS
    if cfg.auth_token_host:
        token_router = Router()
        register_token(token_router, auth)
    else:
        register_token(router, auth)
        open_paths = OPEN_PATHS | {TOKEN_PATH}
    return auth, BearerGate(auth, open_paths), token_router


def _listen(cfg: DaemonConfig, router: Router, services: Services, gate: BearerGate | None = None,
            token_router: Router | None = None) -> list[Any]:
    from dockyard.api.bodycheck import RequestLimits
    from dockyard.api.server import TLSAPIServer, UnixAPIServer, make_tls_context

    limits = RequestLimits(max_json_body=cfg.max_json_body, max_header_bytes=cfg.max_header_bytes,
                           max_json_depth=cfg.max_json_depth, max_labels=cfg.max_labels,
                           max_label_bytes=cfg.max_label_bytes)
    servers: list[Any] = []
    ctx = None
    if cfg.tls or cfg.tlsverify:
        ctx = make_tls_context(cfg.tlscert or "", cfg.tlskey or "", cfg.tlscacert, cfg.tlsverify)
    if token_router is not None and cfg.auth_token_host:
        # the token endpoint's clients authenticate in the request: no client certificate asked for
        token_ctx = make_tls_context(cfg.tlscert or "", cfg.tlskey or "", None, False) if ctx else None
        servers.append(TLSAPIServer(tcp_address(cfg.auth_token_host), token_router, services, token_ctx))
    gid: int | None = None
    for h in cfg.hosts:
        if h.startswith("unix://"):
            path = h[len("unix://"):]
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            if gid is None:
                gid = _socket_group(cfg.group)
            servers.append(UnixAPIServer(path, router, services, mode=0o660, group=gid,
                                         gate=None if cfg.auth_allow_socket else gate, limits=limits))
        else:
            servers.append(TLSAPIServer(tcp_address(h), router, services, ctx, gate=gate, limits=limits))
    return servers


def _write_pidfile(path: str) -> None:
    if os.path.exists(path):
        try:
            with open(path) as f:
                other = int(f.read().strip() or 0)
            if other and other != os.getpid() and os.path.exists(f"/proc/{other}"):
                raise ConfigError(f"pid file found, ensure dockyard is not running or delete {path}")
        except ValueError:
            pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")


def run(cfg: DaemonConfig) -> int:
    from dockyard.daemon.hostlock import claim_daemon

    os.makedirs(cfg.data_root, mode=0o711, exist_ok=True)
    locks = claim_daemon(cfg.data_root, cfg.resource_prefix, cfg.bridge)  # held until this process ends
    _write_pidfile(cfg.pidfile)
    stop = threading.Event()
    servers: list[Any] = []
    services: Services | None = None
    # before anything listens: a SIGTERM right after the socket appears must stop the daemon cleanly
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        if cfg.cgroup_favordynmods:
            from dockyard.runtime.cgroups.tuning import favor_dynamic_modifications

            log.info("cgroups: %s", favor_dynamic_modifications())
        services = build_services(cfg)
        services.containers.settle()  # crashed starts adopted or cleaned before the network reconcile
        services.networks.startup()
        services.containers.restore()
        services.builds.recover()  # step containers of builds a crash cut short
        router = build_router(services)
        auth, gate, token_router = build_auth(cfg, router)
        servers = _listen(cfg, router, services, gate, token_router)
        if auth is not None:
            signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=auth.reload, daemon=True).start())
        for srv in servers:
            threading.Thread(target=srv.serve_forever, name=f"api-{srv.server_address}", daemon=True).start()
        log.info("API listen on %s", ", ".join(cfg.hosts))
        while not stop.wait(3600):
            pass
        log.info("shutting down")
        return 0
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        for h in cfg.hosts:
            if h.startswith("unix://"):
                try:
                    os.unlink(h[len("unix://"):])
                except OSError:
                    pass
        if services is not None:
            services.events.close()
            services.containers.shutdown(live_restore=cfg.live_restore)
        from dockyard.storage import trash

        trash.drain(5.0)  # a clean stop leaves no removed tree half-deleted (a crash's trash is emptied at start)
        try:
            os.unlink(cfg.pidfile)
        except OSError:
            pass
        locks.release()


def main(argv: list[str]) -> int:
    try:
        cfg = load(argv)
    except ConfigError as e:
        sys.stderr.write(f"dockyard daemon: {e}\n")
        return 1
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(cfg.log_level, cfg.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(cfg)
    except ConfigError as e:
        sys.stderr.write(f"dockyard daemon: {e}\n")
        return 1
