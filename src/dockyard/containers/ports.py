"""What the container service asks of the other services, declared here where it is used (moby's habit).

``daemon/main.py`` passes the implementations as required constructor arguments: the image service
(``ImageLookup``), the snapshotter (``Snapshots``), the network service (``NetworkBackend``), the volume service
(``VolumeBackend``) and the exec service (``ExecRunner``).  Tests pass doubles from ``tests/``.  mypy checks
each implementation against its protocol at the composition root.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dockyard.networks.models import ContainerNetConfig, ContainerNetwork


class ImageRecord(Protocol):
    """An image as the containers use it: its id, config, layers and size."""

    @property
    def id(self) -> str: ...

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def size(self) -> int: ...

    @property
    def chain_ids(self) -> list[str]: ...

    @property
    def repo_tags(self) -> list[str]: ...


class ImageLookup(Protocol):
    def resolve(self, ref: str) -> ImageRecord:
        """By reference, id or id prefix; raises NotFound with docker's wording."""
        ...

    def get_by_id(self, image_id: str) -> ImageRecord: ...

    def commit(self, cid: str, image_id: str, ccfg: dict[str, Any], diff_tar: Iterator[bytes], repo: str = "",
               tag: str = "", comment: str = "", author: str = "", changes: list[str] | None = None,
               config: dict[str, Any] | None = None) -> ImageRecord:
        """A new image: ``diff_tar`` (the writable layer) over ``image_id``, with the container's Config."""
        ...


class Snapshots(Protocol):
    """Each container's writable overlay over its image's layers."""

    def prepare(self, cid: str, image_id: str, chain_ids: list[str]) -> None: ...

    def mount(self, cid: str) -> str:
        """Mount (if it is not) and return the merged root."""
        ...

    def merged_path(self, cid: str) -> str:
        """Where the merged root is (mounted or not)."""
        ...

    def unmount(self, cid: str) -> None: ...

    def remove(self, cid: str) -> None: ...

    def changes(self, cid: str, hidden: Collection[str] = ()) -> list[dict[str, Any]]: ...

    def size(self, cid: str) -> int: ...

    def diff_tar(self, cid: str) -> Iterator[bytes]: ...

    def export(self, cid: str) -> Iterator[bytes]: ...

    def image_of(self, cid: str) -> str | None:
        """The image a container's snapshot is over; None when it has none (start-up recovery asks)."""
        ...

    def ids(self) -> list[str]:
        """Every container id with a snapshot (start-up recovery compares them with the records)."""
        ...


class NetworkBackend(Protocol):
    """The network service as the containers use it (NetGlue builds the requests)."""

    def configure_container(self, container_id: str, network_mode: str,
                            endpoints: dict[str, Any] | None) -> dict[str, Any]: ...

    def prepare_container(self, cfg: ContainerNetConfig) -> ContainerNetwork: ...

    def release_container(self, container_id: str) -> None: ...

    def remove_container(self, container_id: str) -> None: ...

    def rename_container(self, container_id: str, new_name: str) -> None: ...

    def update_ports(self, container_id: str, add: list[str] | dict[str, Any],
                     remove: list[str]) -> dict[str, Any]: ...

    def shutdown(self) -> None: ...


class VolumeBackend(Protocol):
    def ensure(self, name: str, anonymous: bool = False) -> None: ...

    def resolve_for(self, name: str, container_id: str) -> str:
        """Host path to bind for ``-v name:/path`` (created on first use)."""
        ...

    def remove(self, name: str, force: bool = False) -> None: ...


class ExecRunner(Protocol):
    """The exec service as healthchecks and inspect use it."""

    def run(self, container_id: str, cmd: list[str], timeout: float, env: list[str] | None = None,
            user: str = "") -> tuple[int, bytes]:
        """Run a command in the container: (exit code, first output bytes); -1 when it timed out."""
        ...

    def ids_for(self, container_id: str) -> list[str]: ...


class ContainerSettings(Protocol):
    """The daemon's settings the containers read (``DaemonConfig`` implements it)."""

    data_root: str
    default_runtime: str
    log_driver: str
    log_opts: dict[str, str]
    log_opts_given: dict[str, str]  # what daemon.json/--log-opt asked for, without the built-in rotation
    cgroup_parent: str
    live_restore: bool


class ClientStream(Protocol):
    """A client's hijacked connection as attach and exec use it (the API's ``Hijacked`` implements it)."""

    def recv(self, n: int = 65536) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...

    def close(self) -> None: ...
