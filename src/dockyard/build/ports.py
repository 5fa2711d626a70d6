"""What the builder needs from the rest of the engine, declared here (the consumer) and wired by the daemon.

``BuildImages`` is the image store seen by a build (look up a base image, commit a step's layer and config,
tag, drop an intermediate image); ``BuildContainers`` runs a RUN step in a real container through the container
service (so the runtime, overlay snapshots, networks and cgroups are the engine's own) and hands back its diff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class BaseImage:
    id: str
    config: dict[str, Any]  # the OCI image config document
    layer_dirs: list[str]  # unpacked layer directories, lowest first
    repo_tags: list[str]


class BuildImages(Protocol):
    def lookup(self, ref: str) -> BaseImage:
        """An image by reference or ID; raises ``NotFound("No such image: …")``."""
        ...

    def exists(self, image_id: str) -> bool: ...

    def commit(self, parent_id: str, config: dict[str, Any], layer: Iterable[bytes] | None) -> str:
        """Store ``layer`` (a tar stream, or None for a metadata step) on top of ``parent_id``'s layers, then
        the image with ``config`` (its ``rootfs.diff_ids`` completed here); returns the new image ID."""
        ...

    def commit_written(self, parent_id: str, config: dict[str, Any], write: Callable[[str], Iterable[bytes]]) \
            -> str:
        """As ``commit``, for a layer whose producer ``write(diff_dir)`` makes its files in the new layer
        directory itself while yielding the layer tar (hashed and kept as the blob, never parsed back)."""
        ...

    def restore(self, parent_id: str, config: dict[str, Any]) -> str:
        """An image from ``config`` whose layers (``rootfs.diff_ids``) are all in the store already (a step
        matched in a ``cachefrom`` image's history); returns its ID."""
        ...

    def tag(self, image_id: str, ref: str) -> None: ...

    def remove_unused(self, image_id: str) -> int:
        """Delete an untagged image nobody uses (and no child needs); bytes freed (0 if it was kept)."""
        ...

    def pull(self, ref: str, auth: dict[str, Any] | None, progress: Callable[[dict[str, Any]], None],
             platform: str = "") -> None:
        """Fetch ``ref`` from its registry (``NotFound`` / ``Unavailable`` with docker's wording if not); from a
        multi-platform index the entry for ``platform`` ("" is the host's)."""
        ...


@dataclass
class RunRequest:
    image_id: str
    cmd: list[str]
    env: list[str]
    workdir: str
    user: str
    network_mode: str
    binds: list[str]
    tmpfs: dict[str, str]
    resources: dict[str, Any]  # Memory, MemorySwap, CpuShares, CpusetCpus, CpuPeriod, CpuQuota, ShmSize
    extra_hosts: list[str]
    labels: dict[str, str]


class BuildContainers(Protocol):
    def create(self, req: RunRequest) -> str:
        """Create the step's container (not started); its ID."""
        ...

    def run(self, cid: str, output: Callable[[bytes, bool], None]) -> int:
        """Start it, stream its output while it runs (each piece with whether it came from stderr), return
        its exit code."""
        ...

    def diff(self, cid: str) -> Iterator[bytes]:
        """Its writable layer as a layer tar."""
        ...

    def kill(self, cid: str) -> None: ...

    def remove_left(self) -> None:
        """At start-up: remove the step containers a daemon crash left mid-step."""
        ...

    def remove(self, cid: str) -> None: ...
