"""The services the daemon wires together (``daemon/main.py``) and hands to every route module's ``register``.

Every field is required and typed by the service's class, so mypy checks each route's calls; there is no
grab-bag for optional extras: a new service gets a field here and is built in the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.build.service import BuildService
    from dockyard.containers.execs import ExecService
    from dockyard.containers.service import ContainerService
    from dockyard.daemon.config import DaemonConfig
    from dockyard.distribution.service import DistributionService
    from dockyard.events.bus import EventBus
    from dockyard.images.service import ImageService
    from dockyard.networks.service import NetworkService
    from dockyard.storage.db import StateDB
    from dockyard.volumes.service import VolumeService

@dataclass
class Services:
    config: DaemonConfig
    db: StateDB
    events: EventBus
    images: ImageService
    containers: ContainerService
    execs: ExecService
    networks: NetworkService
    volumes: VolumeService
    builds: BuildService
    distribution: DistributionService  # the registry client: pull, push, /auth, search, distribution inspect
