"""The builder's ports (``build/ports.py``) implemented over the engine's services; wired in ``daemon/main.py``.

``ImageBuildStore``: base images by reference with their unpacked layer directories, one commit per step (layer
tar + config), tags, removal of pruned cache images, pulls. ``ContainerBuildRunner``: a RUN step's container
created, started, streamed, waited for, diffed and removed through the container service and the snapshotter.

A step container that runs is marked in ``build/running/<id>`` from just before its start until its exit; a
daemon crash mid-step leaves the mark, and ``remove_left`` (at start-up, after the containers' restore) removes
those containers: the build that owned them is gone, and live restore must not keep its step running.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from ..build.ports import BaseImage, RunRequest
from ..containers.service import ContainerService
from ..errors import NotFound
from ..images.reference import parse_normalized
from ..images.service import ImageService
from ..storage.snapshots import Snapshotter
from ..storage.tarsafe import ChunkReader

log = logging.getLogger("dockyard.build")

Puller = Callable[[str, "dict[str, Any] | None", Callable[[dict[str, Any]], None], str], None]


class ImageBuildStore:
    def __init__(self, images: ImageService, puller: Puller | None = None) -> None:
        self.images = images
        self.puller = puller

    def lookup(self, ref: str) -> BaseImage:
        img = self.images.resolve(ref)
        dirs = [self.images.layers.diff_dir(ch) for ch in img.chain_ids]
        return BaseImage(img.id, img.config, dirs, img.repo_tags)

    def exists(self, image_id: str) -> bool:
        return self.images.store.exists(image_id)

    def commit(self, parent_id: str, config: dict[str, Any], layer: Iterable[bytes] | None) -> str:
        return self._commit(parent_id, config, layer, None)

    def commit_written(self, parent_id: str, config: dict[str, Any], write: Callable[[str], Iterable[bytes]]) \
            -> str:
        return self._commit(parent_id, config, None, write)

    def _commit(self, parent_id: str, config: dict[str, Any], layer: Iterable[bytes] | None,
                write: Callable[[str], Iterable[bytes]] | None) -> str:
        images = self.images
        holder = images.new_holder()
        try:
            parent = images.store.get(parent_id) if parent_id else None
            chains = parent.chain_ids if parent else []
            diff_ids = list(parent.diff_ids) if parent else []
            if layer is not None or write is not None:
                if chains:
                    images.layers.hold(holder, [chains[-1]])
                below = chains[-1] if chains else None
                if write is not None:
                    registered = images.layers.register_written(write, below, holder)
                else:
                    registered = images.layers.register(ChunkReader(layer), below, holder)  # type: ignore[arg-type]
                diff_ids.append(registered.diff_id)
            config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            img = images.create_from_config(config, parent=parent_id, holder=holder)
        except BaseException:
            if isinstance(layer, Generator):  # a diff left half read holds its open files (a full disk's space)
                layer.close()
            raise
        finally:
            images.layers.release(holder)
            images.layers.gc()
        return img.id

    def restore(self, parent_id: str, config: dict[str, Any]) -> str:
        return self.images.create_from_config(config, parent=parent_id).id

    def tag(self, image_id: str, ref: str) -> None:
        self.images.tag(image_id, ref, None)

    def remove_unused(self, image_id: str) -> int:
        """Delete an untagged, childless, unused image: bytes freed, or -1 when it is kept."""
        store = self.images.store
        if not store.exists(image_id):
            return 0
        img = store.get(image_id)
        if img.refs or store.children(image_id) or self.images._users(image_id):
            return -1
        before = self.images.layers_size()
        store.delete(image_id)
        return max(0, before - self.images.layers_size())

    def pull(self, ref: str, auth: dict[str, Any] | None, progress: Callable[[dict[str, Any]], None],
             platform: str = "") -> None:
        if self.puller is None:
            name = parse_normalized(ref).familiar_name if ref else ref
            raise NotFound(f"pull access denied for {name}: this engine has no registry access "
                           "(build base images with 'dockyard image bootstrap')")
        self.puller(ref, auth, progress, platform)


class ContainerBuildRunner:
    def __init__(self, containers: ContainerService, snapshots: Snapshotter, marks_dir: str) -> None:
        self.containers = containers
        self.snapshots = snapshots
        self.marks_dir = marks_dir
        os.makedirs(marks_dir, exist_ok=True)

    def remove_left(self) -> None:
        """Remove the step containers a crash left marked running (their builds died with the daemon)."""
        for cid in os.listdir(self.marks_dir):
            log.warning("removing build step container %s, left by a build a daemon crash cut short", cid[:12])
            try:
                self.containers.remove(cid, force=True, volumes=True)
            except NotFound:
                pass
            except Exception:  # noqa: BLE001 - the mark stays: the next start-up tries again
                log.exception("cannot remove build step container %s", cid[:12])
                continue
            os.unlink(os.path.join(self.marks_dir, cid))

    def create(self, req: RunRequest) -> str:
        host: dict[str, Any] = {"NetworkMode": req.network_mode, "Binds": req.binds or None,
                                "Tmpfs": req.tmpfs or None, "ExtraHosts": req.extra_hosts or None,
                                "LogConfig": {"Type": "json-file", "Config": {}}}
        host.update({k: v for k, v in req.resources.items() if v})
        body: dict[str, Any] = {"Image": req.image_id, "Cmd": req.cmd, "Entrypoint": [""], "Env": req.env,
                                "WorkingDir": req.workdir, "User": req.user, "Labels": req.labels,
                                "Healthcheck": {"Test": ["NONE"]}, "AttachStdout": True, "AttachStderr": True,
                                "HostConfig": host}
        cid, _warnings = self.containers.create(None, body)
        return cid

    def run(self, cid: str, output: Callable[[bytes, bool], None]) -> int:
        from ..containers.logs import LogQuery, read_logs

        mark = os.path.join(self.marks_dir, cid)
        with open(mark, "w"):
            pass
        try:
            self.containers.start(cid)
            c = self.containers.get(cid)
            q = LogQuery(follow=True)
            pending = b""
            for chunk in read_logs(self.containers.log_path(c), "json-file", q, False,
                                   lambda: bool(c.state.Running)):
                pending += chunk
                while len(pending) >= 8:  # the logs' multiplexed frames: 1 stdout, 2 stderr, then a 4-byte size
                    size = int.from_bytes(pending[4:8], "big")
                    if len(pending) < 8 + size:
                        break
                    data, is_err = pending[8:8 + size], pending[0] == 2
                    pending = pending[8 + size:]
                    if data:
                        output(data, is_err)
            code, _err = self.containers.wait(c)
        finally:
            os.unlink(mark)
        return code

    def diff(self, cid: str) -> Iterator[bytes]:
        return self.snapshots.diff_tar(cid)

    def kill(self, cid: str) -> None:
        self.containers.kill(cid, "KILL")

    def remove(self, cid: str) -> None:
        self.containers.remove(cid, force=True, volumes=True)
